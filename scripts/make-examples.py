#!/usr/bin/env python3
"""Writes trailwatch's embedded demo data: one realistic day of CloudTrail in a small
AWS organization, in CloudTrail's own delivery layout, plus the EventBridge events that
do not come through CloudTrail files (AWS Health, AWS Config).

Every record is written by this script (nothing is copied from third-party datasets).
The day holds routine noise (reads, Terraform runs, normal sign-ins, tagged launches)
and, spread through it, at least one event for each built-in rule, with near-misses next
to them (a private ACL, an internal CIDR, tagged instances, a sign-in with MFA, four
failed logins rather than five), so the demo shows both what fires and what does not.

Output is deterministic: run it again and the files are byte-identical.

  scripts/make-examples.py            # rewrites examples/
"""
import datetime as dt
import gzip
import io
import json
import os
import random
import uuid

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")
ORG = "o-acme0example"
PROD, DEV = "111122223333", "444455556666"
DAY = dt.datetime(2026, 3, 10, tzinfo=dt.timezone.utc)  # a Tuesday
rng = random.Random(20260310)


def new_id():
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def ts(hour, minute, second=0):
    return (DAY + dt.timedelta(hours=hour, minutes=minute, seconds=second)).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- principals -------------------------------------------------------------------------

def iam_user(account, name, key="AKIA" + "EXAMPLE"):
    return {
        "type": "IAMUser",
        "principalId": "AIDA" + name.upper().ljust(17, "X")[:17],
        "arn": f"arn:aws:iam::{account}:user/{name}",
        "accountId": account,
        "accessKeyId": key + name.upper()[:4].ljust(4, "X"),
        "userName": name,
    }


def role_session(account, role, session, mfa=False, console=False):
    return {
        "type": "AssumedRole",
        "principalId": f"AROA{role.upper()[:12].ljust(12, 'X')}:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
        "accessKeyId": "ASIA" + session.upper()[:12].ljust(12, "X"),
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": f"AROA{role.upper()[:12].ljust(12, 'X')}",
                "arn": f"arn:aws:iam::{account}:role/{role}",
                "accountId": account,
                "userName": role,
            },
            "webIdFederationData": {},
            "attributes": {"creationDate": ts(0, 0), "mfaAuthenticated": "true" if mfa else "false"},
        },
        **({"sessionCredentialFromConsole": "true"} if console else {}),
    }


def root(account):
    return {
        "type": "Root",
        "principalId": account,
        "arn": f"arn:aws:iam::{account}:root",
        "accountId": account,
        "accessKeyId": "ASIAROOTCONSOLEEXAMPLE",
        "sessionContext": {"attributes": {"creationDate": ts(0, 0), "mfaAuthenticated": "false"}},
    }


def service(name):
    return {"type": "AWSService", "invokedBy": name}


ALICE = iam_user(PROD, "alice")
BOB = iam_user(PROD, "bob")
CAROL = iam_user(PROD, "carol")
DAVE_DEV = iam_user(DEV, "dave")
TERRAFORM = role_session(PROD, "terraform-deployer", "gha-run-4711")
ADMIN_SSO = role_session(PROD, "AWSReservedSSO_AdministratorAccess_0123456789abcdef", "erin@example.com", mfa=True, console=True)
APP_ROLE = role_session(PROD, "orders-api", "i-0a1b2c3d4e5f60718")
CI_ROLE_DEV = role_session(DEV, "ci-runner", "build-9921")

CLI = "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0 exe/x86_64.ubuntu.22 prompt/off command/{}"
TF = "APN/1.0 HashiCorp/1.0 Terraform/1.7.4 (+https://www.terraform.io) terraform-provider-aws/5.40.0"
CONSOLE = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15"
SDK = "aws-sdk-java/2.25.6 Linux/5.10 OpenJDK_64-Bit_Server_VM/17.0.10"

OFFICE_IP = "198.51.100.23"
HOME_IP = "203.0.113.77"
ATTACKER_IP = "192.0.2.201"

records = []  # (account, region, record)


def call(when, identity, source, name, region="us-east-1", account=None, params=None, response=None,
         ip=OFFICE_IP, agent=None, read_only=False, error=None, event_type="AwsApiCall", extra=None,
         category="Management"):
    account = account or identity.get("accountId", PROD)
    rec = {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": when,
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": ip,
        "userAgent": agent or CLI.format(source.split(".")[0] + "." + name.lower()),
        "requestParameters": params,
        "responseElements": response,
        "requestID": new_id(),
        "eventID": new_id(),
        "readOnly": read_only,
        "eventType": event_type,
        "managementEvent": category == "Management",
        "recipientAccountId": account,
        "eventCategory": category,
    }
    if error:
        rec["errorCode"], rec["errorMessage"] = error
        rec["responseElements"] = None
    if event_type == "AwsApiCall":
        rec["tlsDetails"] = {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": f"{source.split('.')[0]}.{region}.amazonaws.com",
        }
    if extra:
        rec.update(extra)
    records.append((account, region, rec))
    return rec


def sign_in(when, identity, outcome="Success", mfa="Yes", ip=OFFICE_IP, account=None, region="us-east-1"):
    extra = {
        "additionalEventData": {
            "LoginTo": "https://console.aws.amazon.com/console/home?state=hashArgs%23&isauthcode=true",
            "MobileVersion": "No",
            "MFAUsed": mfa,
        }
    }
    error = None
    if outcome == "Failure":
        error = ("Failed authentication", "Failed authentication")
    rec = call(when, identity, "signin.amazonaws.com", "ConsoleLogin", region=region, account=account,
               params=None, response={"ConsoleLogin": outcome}, ip=ip, agent=CONSOLE,
               event_type="AwsConsoleSignIn", extra=extra)
    if error:
        rec["errorMessage"] = error[1]
        rec["responseElements"] = {"ConsoleLogin": "Failure"}
    rec.pop("tlsDetails", None)
    return rec


def permission(proto, from_port, to_port, v4=(), v6=(), desc=None):
    ranges = [{"cidrIp": c, **({"description": desc} if desc else {})} for c in v4]
    ranges6 = [{"cidrIpv6": c, **({"description": desc} if desc else {})} for c in v6]
    return {
        "ipProtocol": proto,
        "fromPort": from_port,
        "toPort": to_port,
        "groups": {},
        "ipRanges": {"items": ranges} if ranges else {},
        "ipv6Ranges": {"items": ranges6} if ranges6 else {},
        "prefixListIds": {},
    }


def sg_rule_set(group, account, perms):
    items = []
    for p in perms:
        for r in p["ipRanges"].get("items", []) + p["ipv6Ranges"].get("items", []):
            item = {
                "groupOwnerId": account, "groupId": group, "securityGroupRuleId": "sgr-" + new_id().replace("-", "")[:17],
                "isEgress": False, "ipProtocol": p["ipProtocol"], "fromPort": p["fromPort"], "toPort": p["toPort"],
            }
            item["cidrIpv4" if "cidrIp" in r else "cidrIpv6"] = r.get("cidrIp") or r.get("cidrIpv6")
            if "description" in r:
                item["description"] = r["description"]
            items.append(item)
    return {"requestId": new_id(), "_return": True, "securityGroupRuleSet": {"items": items}}


def authorize_ingress(when, identity, group, perms, **kw):
    account = identity["accountId"]
    return call(when, identity, "ec2.amazonaws.com", "AuthorizeSecurityGroupIngress",
                params={"groupId": group, "ipPermissions": {"items": perms}},
                response=sg_rule_set(group, account, perms), **kw)


def tag_spec(tags):
    return {"items": [{"resourceType": "instance", "tags": [{"key": k, "value": v} for k, v in tags.items()]}]}


def run_instances(when, identity, tags, instance, **kw):
    params = {
        "instancesSet": {"items": [{"imageId": "ami-0c101f26f147fa7fd", "minCount": 1, "maxCount": 1}]},
        "instanceType": "t3.medium",
        "blockDeviceMapping": {},
        "monitoring": {"enabled": False},
        "disableApiTermination": False,
        "disableApiStop": False,
        "clientToken": new_id(),
        "subnetId": "subnet-0f1e2d3c4b5a69788",
    }
    if tags is not None:
        params["tagSpecificationSet"] = tag_spec(tags)
    response = {
        "requestId": new_id(),
        "reservationId": "r-0" + new_id().replace("-", "")[:16],
        "ownerId": identity["accountId"],
        "instancesSet": {"items": [{
            "instanceId": instance, "imageId": "ami-0c101f26f147fa7fd", "instanceType": "t3.medium",
            "instanceState": {"code": 0, "name": "pending"}, "privateIpAddress": "10.20.3.41",
            "subnetId": "subnet-0f1e2d3c4b5a69788", "vpcId": "vpc-0a9b8c7d6e5f40312",
            **({"tagSet": {"items": [{"key": k, "value": v} for k, v in tags.items()]}} if tags else {}),
        }]},
    }
    return call(when, identity, "ec2.amazonaws.com", "RunInstances", params=params, response=response, **kw)


# --- routine noise through the day ------------------------------------------------------

def noise():
    reads = [
        ("ec2.amazonaws.com", "DescribeInstances", {"instancesSet": {}, "filterSet": {}}),
        ("ec2.amazonaws.com", "DescribeSecurityGroups", {"securityGroupSet": {}, "filterSet": {}}),
        ("ec2.amazonaws.com", "DescribeVolumes", {"volumeSet": {}, "filterSet": {}}),
        ("s3.amazonaws.com", "ListBuckets", {"Host": "s3.amazonaws.com"}),
        ("iam.amazonaws.com", "ListRoles", None),
        ("iam.amazonaws.com", "GetAccountSummary", None),
        ("sts.amazonaws.com", "GetCallerIdentity", None),
        ("cloudtrail.amazonaws.com", "DescribeTrails", {"includeShadowTrails": True}),
        ("lambda.amazonaws.com", "ListFunctions20150331", None),
        ("logs.amazonaws.com", "DescribeLogGroups", None),
        ("kms.amazonaws.com", "ListAliases", None),
        ("rds.amazonaws.com", "DescribeDBInstances", None),
    ]
    people = [ALICE, BOB, ADMIN_SSO, TERRAFORM]
    for i in range(140):
        hour = 6 + (i * 13) % 13
        minute = (i * 7) % 60
        source, name, params = reads[i % len(reads)]
        who = people[i % len(people)]
        region = "eu-west-1" if i % 5 == 0 else "us-east-1"
        agent = TF if who is TERRAFORM else (CONSOLE if who is ADMIN_SSO else None)
        ip = "34.201.18.9" if who is TERRAFORM else OFFICE_IP
        call(ts(hour, minute, i % 60), who, source, name, region=region, params=params,
             response=None, read_only=True, agent=agent, ip=ip)
    # The application role reads and writes its own bucket all day (S3 data events).
    for i in range(60):
        hour, minute = (i * 23) // 60, (i * 23) % 60
        name = "GetObject" if i % 3 else "PutObject"
        key = f"orders/2026/03/10/order-{10000 + i}.json"
        params = {"bucketName": "acme-orders-prod", "Host": "acme-orders-prod.s3.us-east-1.amazonaws.com", "key": key}
        if name == "PutObject":
            params["x-amz-server-side-encryption"] = "aws:kms"
        call(ts(hour, minute, 5), APP_ROLE, "s3.amazonaws.com", name, params=params,
             response=None, read_only=name == "GetObject", agent=SDK, ip="10.20.3.17", category="Data",
             extra={"resources": [
                 {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::acme-orders-prod/{key}"},
                 {"accountId": PROD, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::acme-orders-prod"}]})
    # A CI role in the dev account assumes roles and decrypts parameters.
    for i in range(30):
        call(ts(7 + i // 4, (i * 11) % 60), CI_ROLE_DEV, "kms.amazonaws.com", "Decrypt",
             region="eu-west-1", params={"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}, response=None,
             read_only=True, agent=SDK, ip="35.180.4.12")
    # Routine sign-ins with MFA, and AWS services calling on our behalf.
    for who, when in [(ALICE, ts(7, 58)), (BOB, ts(8, 12)), (DAVE_DEV, ts(9, 3))]:
        sign_in(when, who, mfa="Yes", account=who["accountId"])
    call(ts(3, 0), service("autoscaling.amazonaws.com"), "ec2.amazonaws.com", "DescribeInstanceStatus",
         account=PROD, ip="autoscaling.amazonaws.com", agent="autoscaling.amazonaws.com", read_only=True)
    call(ts(11, 40), root(PROD), "iam.amazonaws.com", "CreateServiceLinkedRole", account=PROD,
         params={"aWSServiceName": "elasticloadbalancing.amazonaws.com"},
         response={"role": {"roleName": "AWSServiceRoleForElasticLoadBalancing"}},
         ip="elasticloadbalancing.amazonaws.com", agent="elasticloadbalancing.amazonaws.com",
         extra={"userIdentity": {**root(PROD), "invokedBy": "elasticloadbalancing.amazonaws.com"}})


# --- the incidents ----------------------------------------------------------------------

def incidents():
    # Terraform opens HTTPS from the internal network only: a change, not an exposure.
    authorize_ingress(ts(9, 15), TERRAFORM, "sg-0123456789abcdef0",
                      [permission("tcp", 443, 443, v4=["10.0.0.0/8"], desc="internal https")],
                      agent=TF, ip="34.201.18.9")
    # alice opens SSH and HTTPS to the world in one call: one alert per permission x range.
    authorize_ingress(ts(10, 2), ALICE, "sg-0fedcba9876543210", [
        permission("tcp", 22, 22, v4=["0.0.0.0/0"], desc="temp debug"),
        permission("tcp", 443, 443, v4=["0.0.0.0/0"], v6=["::/0"]),
    ], ip=HOME_IP)
    # A failed attempt (no permission) is not a change.
    authorize_ingress(ts(10, 5), BOB, "sg-0fedcba9876543210",
                      [permission("tcp", 3389, 3389, v4=["0.0.0.0/0"])],
                      error=("UnauthorizedOperation", "You are not authorized to perform this operation."))
    call(ts(16, 30), ALICE, "ec2.amazonaws.com", "RevokeSecurityGroupIngress",
         params={"groupId": "sg-0fedcba9876543210", "ipPermissions": {"items": [
             permission("tcp", 22, 22, v4=["0.0.0.0/0"])]}},
         response={"requestId": new_id(), "_return": True}, ip=HOME_IP)

    # IAM user and key created at 02:13 Berlin time, by an admin working from home.
    call(ts(1, 13), ADMIN_SSO, "iam.amazonaws.com", "CreateUser", params={"userName": "svc-backup"},
         response={"user": {"path": "/", "userName": "svc-backup", "userId": "AIDASVCBACKUPEXAMPLE",
                            "arn": f"arn:aws:iam::{PROD}:user/svc-backup", "createDate": "Mar 10, 2026 1:13:02 AM"}},
         agent=CONSOLE, ip=HOME_IP)
    call(ts(1, 14), ADMIN_SSO, "iam.amazonaws.com", "CreateAccessKey", params={"userName": "svc-backup"},
         response={"accessKey": {"userName": "svc-backup", "accessKeyId": "AKIASVCBACKUPEXAMPLE",
                                 "status": "Active", "createDate": "Mar 10, 2026 1:14:10 AM"}},
         agent=CONSOLE, ip=HOME_IP)
    # The same during business hours does not fire.
    call(ts(10, 30), ADMIN_SSO, "iam.amazonaws.com", "CreateUser", params={"userName": "frank"},
         response={"user": {"path": "/", "userName": "frank", "userId": "AIDAFRANKEXAMPLE00000",
                            "arn": f"arn:aws:iam::{PROD}:user/frank", "createDate": "Mar 10, 2026 10:30:00 AM"}},
         agent=CONSOLE)

    # Launches: one tagged (fine), one untagged, one missing Team; then a tag is removed.
    run_instances(ts(11, 0), TERRAFORM, {"CostCenter": "cc-1042", "Team": "orders", "Name": "orders-api-3"},
                  "i-0aaa1111bbbb2222c", agent=TF, ip="34.201.18.9")
    run_instances(ts(13, 21), BOB, None, "i-0bbb2222cccc3333d")
    run_instances(ts(13, 25), BOB, {"CostCenter": "cc-1042"}, "i-0ccc3333dddd4444e")
    call(ts(15, 2), BOB, "ec2.amazonaws.com", "DeleteTags",
         params={"resourcesSet": {"items": [{"resourceId": "i-0aaa1111bbbb2222c"}]},
                 "tagSet": {"items": [{"key": "CostCenter"}]}},
         response={"requestId": new_id(), "_return": True})

    # S3: one object made public, one PutObject with a private ACL (fine), a bucket policy open to all.
    call(ts(12, 10), BOB, "s3.amazonaws.com", "PutObjectAcl",
         params={"bucketName": "acme-marketing-assets", "Host": "acme-marketing-assets.s3.us-east-1.amazonaws.com",
                 "key": "drafts/q2-pricing.pdf", "acl": "", "x-amz-acl": ["public-read"]},
         response=None, category="Data",
         extra={"resources": [{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::acme-marketing-assets/drafts/q2-pricing.pdf"},
                              {"accountId": PROD, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::acme-marketing-assets"}]})
    call(ts(12, 11), BOB, "s3.amazonaws.com", "PutObjectAcl",
         params={"bucketName": "acme-marketing-assets", "Host": "acme-marketing-assets.s3.us-east-1.amazonaws.com",
                 "key": "drafts/q3-plan.pdf", "acl": "", "x-amz-acl": ["private"]},
         response=None, category="Data",
         extra={"resources": [{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::acme-marketing-assets/drafts/q3-plan.pdf"},
                              {"accountId": PROD, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::acme-marketing-assets"}]})
    policy = {"Version": "2012-10-17", "Statement": [{"Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
                                                      "Action": "s3:GetObject", "Resource": "arn:aws:s3:::acme-static-site/*"}]}
    call(ts(14, 44), ALICE, "s3.amazonaws.com", "PutBucketPolicy",
         params={"bucketName": "acme-static-site", "Host": "acme-static-site.s3.amazonaws.com", "policy": "",
                 "bucketPolicy": policy},
         response=None, ip=HOME_IP)
    vpce_policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                           "Resource": "arn:aws:s3:::acme-internal-docs/*",
                                                           "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-0a1b2c3d4e5f60718"}}}]}
    call(ts(14, 50), TERRAFORM, "s3.amazonaws.com", "PutBucketPolicy",
         params={"bucketName": "acme-internal-docs", "Host": "acme-internal-docs.s3.amazonaws.com", "policy": "",
                 "bucketPolicy": vpce_policy},
         response=None, agent=TF, ip="34.201.18.9")

    # Root signs in without MFA and creates an access key for itself.
    sign_in(ts(19, 5), root(PROD), mfa="No", ip=ATTACKER_IP)
    call(ts(19, 7), root(PROD), "iam.amazonaws.com", "CreateAccessKey", params=None,
         response={"accessKey": {"accessKeyId": "AKIAROOTKEYEXAMPLE00", "status": "Active",
                                 "createDate": "Mar 10, 2026 7:07:41 PM"}},
         ip=ATTACKER_IP, agent=CONSOLE)

    # An IAM user signs in without MFA; a federated SSO session without MFA is not the same thing.
    sign_in(ts(8, 47), CAROL, mfa="No", ip=HOME_IP)
    # Five failed sign-ins for dave in the dev account within four minutes; four for bob (not enough).
    for i in range(5):
        sign_in(ts(20, 10 + i // 2, 13 * i), iam_user(DEV, "dave"), outcome="Failure", mfa="No",
                ip=ATTACKER_IP, account=DEV)
    for i in range(4):
        sign_in(ts(17, 30 + 2 * i), BOB, outcome="Failure", mfa="No", ip=OFFICE_IP)

    # Administrator access for a user; a read-only policy for another (fine).
    call(ts(19, 12), root(PROD), "iam.amazonaws.com", "AttachUserPolicy",
         params={"userName": "svc-backup", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
         response=None, ip=ATTACKER_IP, agent=CONSOLE)
    call(ts(10, 45), ADMIN_SSO, "iam.amazonaws.com", "AttachUserPolicy",
         params={"userName": "frank", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"},
         response=None, agent=CONSOLE)

    # Covering tracks: stop CloudTrail logging, delete the GuardDuty detector.
    call(ts(19, 20), root(PROD), "cloudtrail.amazonaws.com", "StopLogging",
         params={"name": f"arn:aws:cloudtrail:us-east-1:{PROD}:trail/org-trail"}, response=None,
         ip=ATTACKER_IP, agent=CONSOLE)
    call(ts(19, 21), root(PROD), "guardduty.amazonaws.com", "DeleteDetector",
         params={"detectorId": "12abc34d567e8fa901bc2d34e56789f0"}, response=None,
         ip=ATTACKER_IP, agent=CONSOLE)

    # A leaked key probing the account: 24 AccessDenied in three minutes.
    thief = iam_user(DEV, "ci-deploy", key="AKIALEAKED")
    probes = [("iam.amazonaws.com", "ListUsers"), ("s3.amazonaws.com", "ListBuckets"),
              ("secretsmanager.amazonaws.com", "ListSecrets"), ("ec2.amazonaws.com", "DescribeInstances")]
    for i in range(24):
        source, name = probes[i % len(probes)]
        code = "UnauthorizedOperation" if source == "ec2.amazonaws.com" else "AccessDenied"
        call(ts(21, 0 + i // 8, (i * 7) % 60), thief, source, name, account=DEV, read_only=True,
             ip=ATTACKER_IP, agent="python-requests/2.31.0",
             error=(code, f"User: {thief['arn']} is not authorized to perform: {name}"))
    # AWS quarantines the key it found exposed.
    call(ts(21, 9), service("iam.amazonaws.com"), "iam.amazonaws.com", "AttachUserPolicy", account=DEV,
         params={"userName": "ci-deploy", "policyArn": "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3"},
         response=None, ip="iam.amazonaws.com", agent="iam.amazonaws.com",
         extra={"userIdentity": {"type": "AWSService", "invokedBy": "iam.amazonaws.com"}})


def eventbridge_events():
    health = {
        "version": "0", "id": new_id(), "detail-type": "AWS Health Event", "source": "aws.health",
        "account": DEV, "time": ts(21, 5), "region": "global", "resources": ["AKIALEAKEDCI-X"],
        "detail": {
            "eventArn": f"arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/AWS_RISK_CREDENTIALS_EXPOSED_{new_id()}",
            "service": "RISK", "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED", "eventTypeCategory": "issue",
            "eventScopeCode": "ACCOUNT_SPECIFIC", "communicationId": new_id(), "startTime": "Tue, 10 Mar 2026 21:05:00 GMT",
            "lastUpdatedTime": "Tue, 10 Mar 2026 21:05:00 GMT", "statusCode": "open", "eventRegion": "global",
            "eventDescription": [{"language": "en_US", "latestDescription":
                "Your AWS access key AKIALEAKEDCI-X belonging to IAM user ci-deploy, along with the corresponding secret key, "
                "is publicly available online at https://github.com/example/leaky/blob/0123abc/deploy.sh."}],
            "affectedEntities": [{"entityValue": "AKIALEAKEDCI-X"}],
            "affectedAccount": DEV,
        },
    }
    config = {
        "version": "0", "id": new_id(), "detail-type": "Config Rules Compliance Change", "source": "aws.config",
        "account": PROD, "time": ts(10, 9), "region": "us-east-1",
        "resources": [f"arn:aws:ec2:us-east-1:{PROD}:security-group/sg-0fedcba9876543210"],
        "detail": {
            "resourceId": "sg-0fedcba9876543210", "awsRegion": "us-east-1", "awsAccountId": PROD,
            "configRuleName": "restricted-ssh", "recordVersion": "1.0",
            "configRuleARN": f"arn:aws:config:us-east-1:{PROD}:config-rule/config-rule-ab12cd",
            "messageType": "ComplianceChangeNotification",
            "newEvaluationResult": {
                "evaluationResultIdentifier": {"evaluationResultQualifier": {
                    "configRuleName": "restricted-ssh", "resourceType": "AWS::EC2::SecurityGroup",
                    "resourceId": "sg-0fedcba9876543210", "evaluationMode": "DETECTIVE"},
                    "orderingTimestamp": ts(10, 2)},
                "complianceType": "NON_COMPLIANT", "resultRecordedTime": ts(10, 9),
                "configRuleInvokedTime": ts(10, 8), "annotation": "Port 22 is open to 0.0.0.0/0."},
            "oldEvaluationResult": {
                "evaluationResultIdentifier": {"evaluationResultQualifier": {
                    "configRuleName": "restricted-ssh", "resourceType": "AWS::EC2::SecurityGroup",
                    "resourceId": "sg-0fedcba9876543210", "evaluationMode": "DETECTIVE"},
                    "orderingTimestamp": ts(9, 0)},
                "complianceType": "COMPLIANT", "resultRecordedTime": ts(9, 1), "configRuleInvokedTime": ts(9, 0)},
            "notificationCreationTime": ts(10, 9),
            "resourceType": "AWS::EC2::SecurityGroup",
        },
    }
    return {"aws-health-credentials-exposed.json": health, "aws-config-restricted-ssh-noncompliant.json": config}


def write_delivery_files():
    # CloudTrail delivers per account and region, about every five minutes; we bucket by hour
    # to keep the demo small.
    buckets = {}
    for account, region, rec in records:
        hour = rec["eventTime"][:13]
        buckets.setdefault((account, region, hour), []).append(rec)
    out = os.path.join(ROOT, "cloudtrail")
    for (account, region, hour), recs in sorted(buckets.items()):
        recs.sort(key=lambda r: r["eventTime"])
        stamp = dt.datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=dt.timezone.utc) + dt.timedelta(minutes=55)
        folder = os.path.join(out, "AWSLogs", ORG, account, "CloudTrail", region, stamp.strftime("%Y/%m/%d"))
        os.makedirs(folder, exist_ok=True)
        name = f"{account}_CloudTrail_{region}_{stamp.strftime('%Y%m%dT%H%MZ')}_{new_id().replace('-', '')[:16]}.json.gz"
        raw = json.dumps({"Records": recs}, separators=(",", ":")).encode()
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as gz:
            gz.write(raw)
        with open(os.path.join(folder, name), "wb") as f:
            f.write(buf.getvalue())
    return len(buckets)


def main():
    noise()
    incidents()
    out = os.path.join(ROOT, "cloudtrail")
    if os.path.isdir(out):
        for dirpath, _, files in os.walk(out):
            for f in files:
                os.remove(os.path.join(dirpath, f))
    files = write_delivery_files()
    eb_dir = os.path.join(ROOT, "eventbridge")
    os.makedirs(eb_dir, exist_ok=True)
    for name, event in eventbridge_events().items():
        with open(os.path.join(eb_dir, name), "w") as f:
            json.dump(event, f, indent=2)
            f.write("\n")
    print(f"wrote {len(records)} records in {files} delivery files, and 2 EventBridge events, under {ROOT}")


if __name__ == "__main__":
    main()
