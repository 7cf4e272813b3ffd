"""Storage: SQLAlchemy models and the one async store the server and CLI call."""

from .store import (
    AccountError,
    AccountInfo,
    RoleChangeInfo,
    ArticleData,
    GroupInfo,
    HeldInfo,
    PostOutcome,
    Poster,
    PostRejected,
    Store,
    StoreError,
)

__all__ = [
    "AccountError",
    "AccountInfo",
    "RoleChangeInfo",
    "ArticleData",
    "GroupInfo",
    "HeldInfo",
    "PostOutcome",
    "Poster",
    "PostRejected",
    "Store",
    "StoreError",
]
