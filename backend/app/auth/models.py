"""Tables of the auth database."""

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import AuthBase, BigIntId, TimestampMixin


class User(TimestampMixin, AuthBase):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    hashed_password: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str | None] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(default=True)
    is_superuser: Mapped[bool] = mapped_column(default=False)
