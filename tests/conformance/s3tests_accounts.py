"""The three s3-tests users (main, alt, tenant) as moto accounts of their own, and the
s3tests.conf that names them: for `s3tests_runner.py`."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
from harness import REGION, MotoBackend

# moto answers every account's requests with one canonical owner; the suite compares ACL
# owners and grantees with the ids configured here.
MOTO_OWNER_ID = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a"
MOTO_OWNER_NAME = "webfile"


@dataclass(frozen=True, slots=True)
class User:
    """One s3-tests user: its section, moto account, and the keys it uses through the proxy."""

    section: str
    account: str
    proxy_key: str
    proxy_secret: str
    email: str


# Different accounts, so that what alt may do with main's buckets is decided by the store's
# ACL and policy checks rather than by being the same principal. The proxy keys are those of
# s3tests.conf.SAMPLE; moto makes up its own.
USERS = (
    User(
        "main",
        "123456789012",
        "0555b35654ad1656d804",
        "h7GhxuBLTrlhVUyxSPUKUV8r/2EI4ngqJxD7iBdBYLhwluN30JaT3Q==",
        "tester@ceph.com",
    ),
    User(
        "alt",
        "222222222222",
        "NOPQRSTUVWXYZABCDEFG",
        "nopqrstuvwxyzabcdefghijklmnabcdefghijklm",
        "john.doe@example.com",
    ),
    User(
        "tenant",
        "333333333333",
        "HIJKLMNOPQRSTUVWXYZA",
        "opqrstuvwxyzabcdefghijklmnopqrstuvwxyzab",
        "tenanteduser@example.com",
    ),
)
_ADMIN_POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


class MotoAccounts(MotoBackend):
    """moto with signature checks and one admin IAM user per s3-tests user, each in its own
    account (moto takes the account of IAM calls from `x-moto-account-id`, and the account of
    any later request from the key that signed it). `access_key_id` is main's."""

    def __init__(self, log_dir: Path, name: str) -> None:
        super().__init__(log_dir, auth=True, name=name)
        self.keys: dict[str, tuple[str, str]] = {}

    def _env(self) -> dict[str, str]:
        env = super()._env()
        # CreateUser, CreateAccessKey and PutUserPolicy for each user; every later request is
        # signature-checked.
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(3 * len(USERS))
        return env

    def _create_admin_key(self) -> None:
        for user in USERS:
            iam = boto3.session.Session(
                aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap", region_name=REGION
            ).client(
                "iam",
                endpoint_url=self.endpoint,
                config=Config(retries={"total_max_attempts": 1}, connect_timeout=5),
            )

            def in_account(request: object, account: str = user.account, **_: object) -> None:
                request.headers["x-moto-account-id"] = account  # type: ignore[attr-defined]

            iam.meta.events.register("before-sign.iam", in_account)
            name = f"s3tests-{user.section}"
            iam.create_user(UserName=name)
            key = iam.create_access_key(UserName=name)["AccessKey"]
            iam.put_user_policy(UserName=name, PolicyName="admin", PolicyDocument=_ADMIN_POLICY)
            self.keys[user.section] = (key["AccessKeyId"], key["SecretAccessKey"])
        self.access_key_id, self.secret_access_key = self.keys["main"]


def s3tests_conf(endpoint: str, keys: Mapping[str, tuple[str, str]]) -> str:
    """An s3tests.conf for `endpoint`, with `keys` as each user's (access key, secret)."""
    host, _, port = endpoint.removeprefix("http://").partition(":")
    sections = [
        "[DEFAULT]",
        f"host = {host}",
        f"port = {port}",
        "is_secure = False",
        "ssl_verify = False",
        "",
        "[fixtures]",
        "bucket prefix = s3t-{random}-",
        "",
    ]
    for user in USERS:
        key, secret = keys[user.section]
        sections += [
            f"[s3 {user.section}]",
            f"display_name = {MOTO_OWNER_NAME}",
            f"user_id = {MOTO_OWNER_ID}",
            f"email = {user.email}",
            f"access_key = {key}",
            f"secret_key = {secret}",
            "api_name = ",
            *(["tenant = testx"] if user.section == "tenant" else []),
            "",
        ]
    # IAM users the suite's IAM and STS tests want; neither store has them, so those fail.
    for section, key in (("iam", "ABCDEFGHIJKLMNOPQRST"), ("iam root", "AAAAAAAAAAAAAAAAAAAA")):
        sections += [f"[{section}]", f"access_key = {key}", f"secret_key = {key.lower()}"]
        sections += ["user_id = 0123456789", "email = iam@example.com", "display_name = iam", ""]
    sections += ["[iam alt root]", "access_key = BBBBBBBBBBBBBBBBBBBB"]
    sections += ["secret_key = bbbbbbbbbbbbbbbbbbbb", "user_id = 9876543210", "email = alt@x.com"]
    return "\n".join(sections) + "\n"
