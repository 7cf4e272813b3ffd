"""The schema: typed SQLAlchemy 2 declarative models.

Hot reads (OVER, ARTICLE, GROUP) go through ``Membership`` by its primary
key (group, number) and through ``Article.message_id``; both are indexed.
Overview lines are computed once at arrival and stored on the membership
row, so OVER is one ordered range read.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 2

# SQLite stores an INTEGER PRIMARY KEY as the rowid; BigInteger on other engines.
IdType = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC, returned as aware UTC, the same on every engine."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return value.replace(tzinfo=timezone.utc) if value is not None else None


class Base(AsyncAttrs, DeclarativeBase):
    pass


class Meta(Base):
    """Key/value facts about the database itself (schema version)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Group(Base):
    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    name: Mapped[str] = mapped_column(String(497), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # y: posting allowed, n: read-only, m: moderated (RFC 3977 7.6.3)
    status: Mapped[str] = mapped_column(String(1), default="y")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    creator: Mapped[str] = mapped_column(String(255), default="")
    # high is the last number ever assigned: numbers are never reused.
    high: Mapped[int] = mapped_column(BigInteger, default=0)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class Article(Base):
    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(250), unique=True)
    header: Mapped[bytes] = mapped_column(LargeBinary)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    date: Mapped[str] = mapped_column(Text)
    from_: Mapped[str] = mapped_column("from", Text)
    subject: Mapped[str] = mapped_column(Text)
    references: Mapped[str] = mapped_column(Text, default="")
    bytes: Mapped[int] = mapped_column(Integer)
    lines: Mapped[int] = mapped_column(Integer)
    arrived_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    thread_key: Mapped[str] = mapped_column(String(250))
    xref: Mapped[str] = mapped_column(Text)
    # Who posted, as the server knows it: the account (if authenticated) and
    # its role at posting time; author_key is the account or the From address.
    author_key: Mapped[str] = mapped_column(String(255))
    poster_account: Mapped[str | None] = mapped_column(String(255), nullable=True)
    poster_role: Mapped[str | None] = mapped_column(String(16), nullable=True)

    # A thread's articles, and whether an author already posted in it (the
    # participant count), are both found by this index: no table of its own.
    __table_args__ = (Index("ix_articles_thread_author", "thread_key", "author_key"),)


class Membership(Base):
    """An article's number in one group; cross-posts have one row per group."""

    __tablename__ = "memberships"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), index=True
    )
    thread_key: Mapped[str] = mapped_column(String(250))
    # The overview line after the article number (RFC 3977 8.3.2), Xref included.
    overview: Mapped[bytes] = mapped_column(LargeBinary)

    # On SQLite the rows live in the primary-key B-tree itself (WITHOUT ROWID):
    # OVER reads one tree in (group, number) order, a post writes one tree fewer.
    # Views find a thread's numbers through articles (thread, author) and article_id.
    __table_args__ = {"sqlite_with_rowid": False}


class Thread(Base):
    """Per-thread figures, kept up to date on every arrival.

    key is the root Message-ID (the first one in References, RFC 5537
    section 3.4.4), so a reply that arrives before its parent still lands
    in the right thread.
    """

    __tablename__ = "threads"

    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    group_name: Mapped[str] = mapped_column(String(497), index=True)
    subject: Mapped[str] = mapped_column(Text)
    root_present: Mapped[bool] = mapped_column(Boolean, default=False)
    op_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    op_from: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_post_at: Mapped[datetime] = mapped_column(UTCDateTime())
    posts: Mapped[int] = mapped_column(Integer, default=0)
    participants: Mapped[int] = mapped_column(Integer, default=0)
    first_reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    first_staff_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    # Open threads are found by these without scanning answered ones.
    __table_args__ = (
        Index("ix_threads_unanswered", "first_reply_at", "group_name", "started_at"),
        Index("ix_threads_awaiting_staff", "first_staff_at", "group_name", "started_at"),
        {"sqlite_with_rowid": False},  # keyed by text: one B-tree, not a table plus its key index
    )


class HeldArticle(Base):
    """A post to a moderated group waiting for `nntpd queue approve|reject`."""

    __tablename__ = "held_articles"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(250), unique=True)
    newsgroups: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    from_: Mapped[str] = mapped_column("from", Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    header: Mapped[bytes] = mapped_column(LargeBinary)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    # The other prepared fields (overview, thread key, ...) as JSON, so
    # approval publishes exactly what was held.
    fields: Mapped[str] = mapped_column(Text)
    poster_account: Mapped[str | None] = mapped_column(String(255), nullable=True)
    poster_role: Mapped[str | None] = mapped_column(String(16), nullable=True)


class Account(Base):
    """A poster's account. The role is a property of the account, never of a header."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(255), default="")
    # "scrypt$n$r$p$salt$hash": the parameters travel with the hash so they can be raised later.
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    role: Mapped[str] = mapped_column(String(16), default="member")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RoleChange(Base):
    """Who changed whose role, and when."""

    __tablename__ = "role_changes"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    account: Mapped[str] = mapped_column(String(64), index=True)
    old_role: Mapped[str] = mapped_column(String(16))
    new_role: Mapped[str] = mapped_column(String(16))
    changed_by: Mapped[str] = mapped_column(String(255))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
