"""Piccolo configuration: the engine comes from mediaflow's settings."""

from piccolo.conf.apps import AppRegistry

from core.config import Settings
from core.db import engine_from_settings

DB = engine_from_settings(Settings())

APP_REGISTRY = AppRegistry(apps=["core.piccolo_app"])
