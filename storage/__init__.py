"""Storage: SQLAlchemy models and the one async store the server and CLI call."""

from .store import (
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
    "ArticleData",
    "GroupInfo",
    "HeldInfo",
    "PostOutcome",
    "Poster",
    "PostRejected",
    "Store",
    "StoreError",
]
