"""The Switchboard dashboard: a Reflex app that is only a GraphQL client of the gateway."""

from __future__ import annotations

import reflex as rx

from frontend_reflex.pages import (
    analytics,
    apps,
    audit,
    dlp,
    home,
    keys,
    login,
    logs,
    me,
    organizations,
    request,
    routing,
    settings,
    usage,
    users,
)
from frontend_reflex.state.analytics import AnalyticsState
from frontend_reflex.state.apps import AppsState
from frontend_reflex.state.audit import AuditState
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.dlp import DlpState
from frontend_reflex.state.home import HomeState
from frontend_reflex.state.keys import KeysState
from frontend_reflex.state.logs import LogsState
from frontend_reflex.state.me import MeState
from frontend_reflex.state.orgs import OrgsState
from frontend_reflex.state.request import RequestState
from frontend_reflex.state.routing import AgentsState, ModelsState, RouterState
from frontend_reflex.state.settings import SettingsState
from frontend_reflex.state.usage import ErrorsState, ExportState, UsageState
from frontend_reflex.state.users import UsersState

app = rx.App()
PAGES = [
    ("/login", login.page, "Sign in", AuthState.open_login),
    ("/sso", login.sso_page, "Signing in", AuthState.finish_sso),
    ("/", home.page, "Home", HomeState.load),
    ("/analytics", analytics.page, "Analytics", AnalyticsState.load),
    ("/audit", audit.page, "Audit Log", AuditState.load),
    ("/users", users.page, "Users", UsersState.load),
    ("/organizations", organizations.page, "Organizations", OrgsState.load),
    ("/apps", apps.page, "Apps", AppsState.load),
    ("/router", routing.router_page, "Model Router", RouterState.load),
    ("/agents", routing.agents_page, "Agent Configurations", AgentsState.load),
    ("/models", routing.models_page, "Available Models", ModelsState.load),
    ("/logs", logs.page, "Gateway Logs", LogsState.load),
    ("/request", request.page, "Request detail", RequestState.load),
    ("/keys", keys.page, "Keys", KeysState.load),
    ("/usage", usage.usage_page, "Per-User Usage", UsageState.load),
    ("/dlp", dlp.page, "DLP", DlpState.load),
    ("/settings", settings.page, "Gateway Settings", SettingsState.load),
    ("/export", usage.export_page, "User Activity Export", ExportState.load),
    ("/errors", usage.errors_page, "Error Reports", ErrorsState.load),
    ("/me", me.page, "My Account", MeState.load),
]
for route, component, title, on_load in PAGES:
    app.add_page(component, route=route, title=f"{title} · Switchboard", on_load=on_load)
