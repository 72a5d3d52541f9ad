"""Tortoise models, split by domain. ``MODEL_MODULES`` lists them for Tortoise's app config."""

MODEL_MODULES = [
    "backend.data.models.tenancy",
    "backend.data.models.keys",
    "backend.data.models.logs",
    "backend.data.models.daily",
    "backend.data.models.routing",
    "backend.data.models.settings",
    "backend.data.models.dlp",
    "backend.data.models.deployments",
    "backend.data.models.alerts",
    "backend.data.models.responses",
    "backend.data.models.sso",
]
