#!/usr/bin/env python3
"""Generates crates/rules/data/aws-api-catalog.txt.gz: the AWS API catalogue that `rules lint`
checks eventSource and eventName values against.

Source: the service models botocore ships (data/<service>/<api-version>/service-2.json[.gz]).
Every API version of a service is read and the operation names are united, so calls that
older logs contain still count as real.

Mapping model -> CloudTrail eventSource: "<endpointPrefix>.amazonaws.com" for most services,
plus "<signingName>.amazonaws.com" when that differs, plus the exceptions in EXTRA_SOURCES.
Events that are not API operations (console sign-in and the like) are listed in NON_API.

Output: one line per eventSource, "<eventSource>\t<op> <op> ...", sorted, gzip'd with mtime 0
so the file is reproducible.

Usage: python3 crates/rules/tools/gen-catalog.py [OUTPUT]
"""
import gzip
import io
import json
import os
import sys

import botocore

# CloudTrail eventSources that differ from both endpointPrefix and signingName.
EXTRA_SOURCES = {
    "email": ["ses.amazonaws.com"],
    "sesv2": ["ses.amazonaws.com"],
    "bedrock-runtime": ["bedrock.amazonaws.com"],
    "bedrock-agent": ["bedrock.amazonaws.com"],
    "bedrock-agent-runtime": ["bedrock.amazonaws.com"],
    "sso": ["sso.amazonaws.com"],
    "sso-admin": ["sso.amazonaws.com"],
    "identitystore": ["sso-directory.amazonaws.com"],
    "s3control": ["s3.amazonaws.com"],
    "elbv2": ["elasticloadbalancing.amazonaws.com"],
    "resourcegroupstaggingapi": ["tagging.amazonaws.com"],
    "cloudwatch": ["monitoring.amazonaws.com"],
    "ssm-incidents": ["ssm-incidents.amazonaws.com"],
    "inspector2": ["inspector2.amazonaws.com"],
}

# Non-API events CloudTrail records (no service model has them).
NON_API = {
    "signin.amazonaws.com": [
        "ConsoleLogin", "ConsoleLogout", "CheckMfa", "SwitchRole", "ExitRole", "RenewRole",
        "PasswordRecoveryRequested", "PasswordRecoveryCompleted", "GetSigninToken",
        "CredentialChallenge", "CredentialVerification", "UserAuthentication",
        "AuthenticateRootUser", "ConsoleLoginOAuth", "PasswordUpdated",
    ],
    "sso.amazonaws.com": ["Authenticate", "Federate", "CredentialChallenge", "CredentialVerification",
                          "UserAuthentication", "ListApplications", "ListProfilesForApplication"],
    "iam.amazonaws.com": ["GetAccountPasswordPolicy"],
    # S3 logs some calls under names of its own (bucket sub-resources, internal calls).
    "s3.amazonaws.com": ["PutBucketPublicAccessBlock", "GetBucketPublicAccessBlock",
                         "DeleteBucketPublicAccessBlock", "ListObjects", "HeadBucket", "HeadObject",
                         "ListBuckets", "GetAccelerateConfiguration", "PutAccelerateConfiguration",
                         "GetBucketObjectLockConfiguration", "PutBucketObjectLockConfiguration",
                         "GetAccountPublicAccessBlock", "PutAccountPublicAccessBlock",
                         "DeleteAccountPublicAccessBlock", "GetStorageLensDashboardDataInternal"],
    "ec2.amazonaws.com": ["SharedSnapshotCopyInitiated", "SharedSnapshotVolumeCreated"],
    "health.amazonaws.com": ["AWS_RISK_CREDENTIALS_EXPOSED"],
    # Service-internal events seen in real trails.
    "cloudtrail.amazonaws.com": ["CreateServiceLinkedChannel"],
    "kms.amazonaws.com": ["RotateKey", "DeleteExpiredKeyMaterial"],
    "rds.amazonaws.com": ["DescribeRecommendationGroups", "DescribeRecommendations"],
    "secretsmanager.amazonaws.com": ["EndSecretVersionDelete", "StartSecretVersionDelete",
                                     "RotationStarted", "RotationSucceeded", "RotationFailed",
                                     "RotationAbandoned", "CancelSecretVersionDelete"],
    "ssm.amazonaws.com": ["ListInstanceAssociations", "UpdateInstanceAssociationStatus",
                          "UpdateInstanceInformation"],
    "bedrock.amazonaws.com": ["PutFoundationModelEntitlement", "PutUseCaseForModelAccess",
                              "GetUseCaseForModelAccess"],
}


def load(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "data", "aws-api-catalog.txt.gz")
    data = os.path.join(os.path.dirname(botocore.__file__), "data")
    catalog = {}
    for service in sorted(os.listdir(data)):
        sdir = os.path.join(data, service)
        if not os.path.isdir(sdir):
            continue
        for version in sorted(os.listdir(sdir)):
            vdir = os.path.join(sdir, version)
            model = None
            for name in ("service-2.json.gz", "service-2.json"):
                if os.path.exists(os.path.join(vdir, name)):
                    model = load(os.path.join(vdir, name))
                    break
            if model is None:
                continue
            meta = model.get("metadata", {})
            sources = set()
            for key in ("endpointPrefix", "signingName"):
                if meta.get(key):
                    sources.add(meta[key] + ".amazonaws.com")
            sources.update(EXTRA_SOURCES.get(service, []))
            ops = set(model.get("operations", {}).keys())
            for src in sources:
                catalog.setdefault(src, set()).update(ops)
    for src, ops in NON_API.items():
        catalog.setdefault(src, set()).update(ops)
    lines = [f"{src}\t{' '.join(sorted(ops))}\n" for src, ops in sorted(catalog.items()) if ops]
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write("".join(lines).encode())
    with open(out, "wb") as f:
        f.write(buf.getvalue())
    print(f"{out}: {len(lines)} event sources, {sum(len(o) for o in catalog.values())} operations, "
          f"{len(buf.getvalue())} bytes (botocore {botocore.__version__})", file=sys.stderr)


if __name__ == "__main__":
    main()
