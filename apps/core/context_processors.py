from django.utils.html import format_html

NAVIGATION = [
    ("Dashboard", "core:dashboard", "speedometer2"),
    ("Releases", "releases:list", "box-seam"),
    ("Deployments", "deployments:list", "rocket-takeoff"),
    ("Approvals", "approvals:inbox", "person-check"),
    ("Calendar", "scheduling:calendar", "calendar3"),
    ("Environments", "environments:list", "hdd-stack"),
    ("Policies", "policies:list", "shield-check"),
    ("Inventory", "inventory:search", "search"),
    ("Applications", "catalog:application-list", "grid-3x3-gap"),
    ("Audit", "audit:log", "journal-check"),
]


def _namespace(url_name: str) -> str:
    return url_name.rpartition(":")[0]


# A namespace that holds one entry only is a whole section: every page in it marks that entry
# (environment detail pages mark Environments). Entries sharing a namespace (core) match by name.
_SECTION_NAMESPACES = {
    namespace
    for namespace in {_namespace(url_name) for _, url_name, _ in NAVIGATION}
    if sum(_namespace(url_name) == namespace for _, url_name, _ in NAVIGATION) == 1
}


# Pages of another namespace that belong to an entry's section: an environment's Inventory and Policies
# tabs and its targets' pages are environment pages.
_PART_OF = {
    "inventory:environment": "environments:list",
    "inventory:target": "environments:list",
    "policies:environment": "environments:list",
}


def _is_active(url_name: str, match) -> bool:
    if match is None:
        return False
    name = f"{match.namespace}:{match.url_name}"
    if name == url_name or _PART_OF.get(name) == url_name:
        return True
    if name in _PART_OF:
        return False
    namespace = _namespace(url_name)
    return namespace in _SECTION_NAMESPACES and match.namespace == namespace


def _approvals_label(request):
    """The Approvals entry's label, with a badge counting the deployments waiting for the user's decision.

    A callable, which the template calls when it draws the navigation bar: the count (one query) is paid
    by whole pages only, never by the fragments htmx fetches (a deployment page polls one every 2 s)."""

    def label():
        from apps.approvals.selectors import waiting_for  # approvals builds on core, not the other way round

        count = waiting_for(request.user).count()
        if not count:
            return "Approvals"
        return format_html(
            'Approvals <span class="badge rounded-pill text-bg-warning rh-nav-badge" data-testid="approvals-badge">{}'
            '<span class="visually-hidden"> waiting for you</span></span>',
            count,
        )

    return label


def navigation(request) -> dict:
    """The main navigation, with the entry of the current page's section marked active."""
    match = getattr(request, "resolver_match", None)
    items = [
        {
            "label": _approvals_label(request) if url_name == "approvals:inbox" else label,
            "url_name": url_name,
            "icon": icon,
            "active": _is_active(url_name, match),
        }
        for label, url_name, icon in NAVIGATION
    ]
    return {"navigation": items}
