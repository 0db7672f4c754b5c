"""Storage backends behind one interface; ``get_storage`` picks one from settings."""

from core.config import Settings
from core.storage.base import ObjectNotFound, ObjectStat, PutResult, Storage, StorageError, TooLarge

__all__ = [
    "ObjectNotFound", "ObjectStat", "PutResult", "Storage", "StorageError", "TooLarge",
    "get_storage",
]


def get_storage(settings: Settings) -> Storage:
    if settings.storage == "s3":
        from core.storage.s3 import S3Storage

        return S3Storage.from_settings(settings)
    from core.storage.local import LocalStorage

    return LocalStorage(settings.local_storage_root)
