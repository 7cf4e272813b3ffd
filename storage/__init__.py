"""Storage: SQLAlchemy models and the one async store the server and CLI call."""

from .store import (
    AccountError,
    AccountInfo,
    RoleChangeInfo,
    ArticleData,
    GroupInfo,
    HeldInfo,
    OpenThread,
    ThreadArticle,
    VIEW_KINDS,
    view_of,
    as_view,
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
    "OpenThread",
    "ThreadArticle",
    "VIEW_KINDS",
    "view_of",
    "as_view",
    "PostOutcome",
    "Poster",
    "PostRejected",
    "Store",
    "StoreError",
]
