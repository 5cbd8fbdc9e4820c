NAVIGATION = [
    ("Dashboard", "core:dashboard", "speedometer2"),
    ("Releases", "core:releases", "box-seam"),
    ("Deployments", "core:deployments", "rocket-takeoff"),
    ("Calendar", "core:calendar", "calendar3"),
    ("Environments", "core:environments", "hdd-stack"),
    ("Applications", "core:applications", "grid-3x3-gap"),
    ("Audit", "audit:log", "journal-check"),
]


def navigation(request) -> dict:
    """The main navigation, with the current page's entry marked active."""
    match = getattr(request, "resolver_match", None)
    current = f"{match.namespace}:{match.url_name}" if match else ""
    items = [
        {"label": label, "url_name": url_name, "icon": icon, "active": url_name == current}
        for label, url_name, icon in NAVIGATION
    ]
    return {"navigation": items}
