"""The kinds of step a claim's plan is made of: each names one Ceph (or delivery) effect."""

from __future__ import annotations

from typing import Literal

Action = Literal[
    "crush-rule",
    "pool",
    "pool-quota",
    "image",
    "subvolume-group",
    "subvolume",
    "rgw-user",
    "bucket",
    "bucket-quota",
    "cephx-key",
    "s3-key",
    "deliver",
    "revoke-key",
    "withdraw",
    "await-unreferenced",
    "delete-image",
    "delete-pool",
    "delete-crush-rule",
    "delete-subvolume",
    "delete-bucket",
    "delete-rgw-user",
    "retain",
]
