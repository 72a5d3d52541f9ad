"""Small builders shared by the routing tests."""

from __future__ import annotations

from backend.state.snapshot import AppInfo, KeyInfo, OrgInfo, Principal, UserInfo


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def user_principal(org_id: int | None, user_id: int = 1) -> Principal:
    org = OrgInfo(org_id, f"org{org_id}", f"org-{org_id}") if org_id is not None else None
    user = UserInfo(user_id, "u", "u@example.com", org_id=org_id)
    return Principal(KeyInfo(user_id, "sk-sb-u", user_id, None), user, None, org)


def app_principal(org_id: int, app_id: int = 7) -> Principal:
    org = OrgInfo(org_id, f"org{org_id}", f"org-{org_id}")
    app = AppInfo(app_id, "app", "app", org_id=org_id)
    return Principal(KeyInfo(100 + app_id, "sk-sb-a", None, app_id), None, app, org)
