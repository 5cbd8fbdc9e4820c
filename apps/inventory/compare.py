"""How two environments differ: deployed versions, variables, targets, settings, templates, approval policies
and freezes; as one JSON-ready dict (the API answer and the page's data) and as a Markdown report.

Secret variables are compared by a keyed hash of their plaintext (HMAC with the server's SECRET_KEY): the
answer says whether they are equal, never what they hold, and the hash itself is not shown either (a
hash of a short secret could be brute-forced).
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac

from apps.approvals.models import ApprovalPolicy
from apps.catalog.models import Application, Artifact
from apps.catalog.selectors import applications_visible_to
from apps.core.crypto import InvalidToken, decrypt
from apps.environments.models import MASK, Environment, Target, Variable
from apps.scheduling.freezes import windows_for

from .models import Installation

TARGET_FIELDS = ("address", "slot", "path", "health_check_url", "labels", "attributes")
SETTINGS = (
    "tier",
    "timezone",
    "protected",
    "requires_booking",
    "default_strategy",
    "default_strategy_options",
    "booking_min_minutes",
    "booking_max_minutes",
    "traffic_weights",
)
BUILDS_BETWEEN_LIMIT = 50
# Hosts whose web UI compares two commits at <repository>/compare/<from>...<to>.
COMPARE_HOSTS = ("github.com", "gitlab.com", "codeberg.org", "gitea.com")


def _fingerprint(variable: Variable) -> str:
    """What a variable's value is compared by: the value itself, or a keyed hash of a secret's plaintext."""
    if not variable.secret:
        return variable.value
    try:
        plaintext = decrypt(variable.value)
    except InvalidToken:
        return f"unreadable:{variable.pk}"  # equal to nothing
    return salted_hmac("releasehub.inventory.compare", plaintext, algorithm="sha256").hexdigest()


def _variables(left: Environment, right: Environment) -> tuple[list[dict], int]:
    """Variables that differ (present on one side only, or with another value or secrecy), and how many are the
    same. Target overrides are matched by target name."""
    sides = {}
    for variable in Variable.objects.filter(environment__in=[left, right]).select_related("target"):
        key = (variable.target.name if variable.target else None, variable.name)
        sides.setdefault(key, {})[variable.environment_id] = variable
    rows, same = [], 0
    for (target, name), found in sorted(sides.items(), key=lambda item: (item[0][0] or "", item[0][1])):
        a, b = found.get(left.pk), found.get(right.pk)
        if a and b and a.secret == b.secret and hmac.compare_digest(_fingerprint(a).encode(), _fingerprint(b).encode()):
            same += 1
            continue
        status = "only_left" if b is None else "only_right" if a is None else "different"
        rows.append(
            {
                "name": name,
                "target": target,
                "status": status,
                "left": _shown(a),
                "right": _shown(b),
            }
        )
    return rows, same


def _shown(variable: Variable | None) -> dict | None:
    if variable is None:
        return None
    return {"value": MASK if variable.secret else variable.value, "secret": variable.secret}


def _targets(left: Environment, right: Environment) -> list[dict]:
    """Every target by name: on one side only, or on both with the attributes that differ."""
    sides: dict[str, dict[int, Target]] = {}
    for target in Target.objects.filter(environment__in=[left, right]):
        sides.setdefault(target.name, {})[target.environment_id] = target
    rows = []
    for name, found in sorted(sides.items()):
        a, b = found.get(left.pk), found.get(right.pk)
        differences = [f for f in TARGET_FIELDS if a and b and getattr(a, f) != getattr(b, f)]
        rows.append(
            {
                "name": name,
                "status": "only_left"
                if b is None
                else "only_right"
                if a is None
                else "different"
                if differences
                else "same",
                "differences": differences,
                "left": {f: getattr(a, f) for f in TARGET_FIELDS} if a else None,
                "right": {f: getattr(b, f) for f in TARGET_FIELDS} if b else None,
            }
        )
    return rows


def _deployed(environment: Environment, applications) -> dict[int, dict]:
    """Per application, the versions running in the environment (newest installation first), with the commit
    and the template version of the deployment that put the newest there."""
    found: dict[int, dict] = {}
    rows = (
        Installation.objects.filter(environment=environment, current=True, application__in=applications)
        .select_related("artifact", "deployment__template_version__template")
        .order_by("application_id", "-deployment_id", "target__name")
    )
    for installation in rows:
        entry = found.setdefault(
            installation.application_id,
            {
                "artifact": installation.artifact,
                "template": f"{installation.deployment.template_version.template.slug} "
                f"v{installation.deployment.template_version.number}",
                "versions": [],
                "targets": 0,
            },
        )
        entry["targets"] += 1
        if installation.artifact.version not in entry["versions"]:
            entry["versions"].append(installation.artifact.version)
    return found


def _compare_url(repository: str, a: str, b: str) -> str:
    parts = urlsplit(repository)
    if parts.scheme != "https" or parts.hostname not in COMPARE_HOSTS:
        return ""
    return f"{repository.rstrip('/').removesuffix('.git')}/compare/{a}...{b}"


def _between(application: Application, a: Artifact, b: Artifact) -> dict | None:
    """The builds registered between the two versions (newer side excluded from the older) with their commits,
    and a link comparing the commits on the repository's host; None unless both artifacts name a commit."""
    if not (a.commit and b.commit) or a.commit == b.commit:
        return None
    low, high = sorted((a, b), key=lambda artifact: artifact.version_key)
    builds = (
        Artifact.objects.filter(
            application=application, version_key__gt=low.version_key, version_key__lte=high.version_key
        )
        .exclude(commit="")
        .order_by("-version_key")
        .values("version", "commit", "branch")[:BUILDS_BETWEEN_LIMIT]
    )
    return {
        "from": low.commit,
        "to": high.commit,
        "builds": list(builds),
        "compare_url": _compare_url(application.repository_url, low.commit, high.commit),
    }


def _applications(user, left: Environment, right: Environment) -> list[dict]:
    applications = applications_visible_to(user)
    a_side, b_side = _deployed(left, applications), _deployed(right, applications)
    rows = []
    for application in applications.filter(pk__in=set(a_side) | set(b_side)):
        a, b = a_side.get(application.pk), b_side.get(application.pk)
        same = bool(a and b and a["versions"] == b["versions"])
        rows.append(
            {
                "application": application.slug,
                "name": application.name,
                "status": "same" if same else "only_left" if not b else "only_right" if not a else "different",
                "left": _side(a),
                "right": _side(b),
                "commits": _between(application, a["artifact"], b["artifact"]) if a and b and not same else None,
            }
        )
    return rows


def _side(entry: dict | None) -> dict | None:
    if entry is None:
        return None
    artifact = entry["artifact"]
    return {
        "versions": entry["versions"],
        "targets": entry["targets"],
        "digest": artifact.digest,
        "commit": artifact.commit,
        "template": entry["template"],
    }


def _policy(environment: Environment) -> dict | None:
    policy = ApprovalPolicy.objects.filter(environment=environment).prefetch_related("eligible_teams").first()
    if policy is None:
        return None
    return {
        "required_approvals": policy.required_approvals,
        "eligible_teams": sorted(team.slug for team in policy.eligible_teams.all()),
        "expires_after_hours": round(policy.expires_after.total_seconds() / 3600, 2) if policy.expires_after else None,
        "rejection_rejects": policy.rejection_rejects,
    }


def _freezes(environment: Environment) -> list[dict]:
    now = timezone.now()
    windows = windows_for(environment.pk).filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now) | ~Q(rrule=""))
    return [
        {
            "id": window.pk,
            "title": window.title,
            "all_environments": window.all_environments,
            "starts_at": window.starts_at.isoformat(),
            "ends_at": window.ends_at.isoformat() if window.ends_at else None,
            "rrule": window.rrule,
            "timezone": window.timezone,
        }
        for window in windows.order_by("starts_at", "pk")
    ]


def _template(environment: Environment) -> str | None:
    template = environment.default_template
    return f"{template.slug} v{template.version}" if template else None


def _pair(a, b) -> dict:
    return {"left": a, "right": b, "same": a == b}


def compare_environments(user, left: Environment, right: Environment) -> dict:
    """Everything that differs between two environments the user may view (see the module docstring)."""
    variables, same_variables = _variables(left, right)
    return {
        "left": {"slug": left.slug, "name": left.name, "tier": left.tier},
        "right": {"slug": right.slug, "name": right.name, "tier": right.tier},
        "generated_at": timezone.now().isoformat(),
        "applications": _applications(user, left, right),
        "variables": variables,
        "identical_variables": same_variables,
        "targets": _targets(left, right),
        "settings": [
            {
                "setting": name,
                "label": name.replace("_", " ").capitalize(),
                **_pair(getattr(left, name), getattr(right, name)),
            }
            for name in SETTINGS
            if getattr(left, name) != getattr(right, name)
        ],
        "default_template": _pair(_template(left), _template(right)),
        "approval_policy": _pair(_policy(left), _policy(right)),
        "freezes": _freezes_pair(left, right),
    }


def _freezes_pair(left: Environment, right: Environment) -> dict:
    a, b = _freezes(left), _freezes(right)
    shared = {f["id"] for f in a} & {f["id"] for f in b}
    return {
        "both": [f for f in a if f["id"] in shared],
        "left": [f for f in a if f["id"] not in shared],
        "right": [f for f in b if f["id"] not in shared],
    }


# --- The downloadable report -------------------------------------------------------------------------------


def _cell(value) -> str:
    if value is None or value == "":
        return "—"
    text = value if isinstance(value, str) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _versions(side: dict | None) -> str:
    return ", ".join(side["versions"]) if side else "—"


def markdown_report(comparison: dict) -> str:
    """The comparison as a Markdown document (secrets appear as the mask, like everywhere)."""
    left, right = comparison["left"]["name"], comparison["right"]["name"]
    lines = [f"# {left} compared with {right}", "", f"Generated {comparison['generated_at']}.", ""]
    lines += ["## Deployed versions", "", f"| Application | {left} | {right} | |", "|---|---|---|---|"]
    for row in comparison["applications"]:
        note = "same" if row["status"] == "same" else "differs"
        if row["commits"] and row["commits"]["compare_url"]:
            note += f" ([commits]({row['commits']['compare_url']}))"
        lines.append(f"| {_cell(row['application'])} | {_versions(row['left'])} | {_versions(row['right'])} | {note} |")
    lines += ["", "## Variables", "", f"{comparison['identical_variables']} identical.", ""]
    if comparison["variables"]:
        lines += [f"| Variable | Target | {left} | {right} |", "|---|---|---|---|"]
        for row in comparison["variables"]:
            a = row["left"]["value"] if row["left"] else None
            b = row["right"]["value"] if row["right"] else None
            lines.append(f"| {row['name']} | {_cell(row['target'])} | {_cell(a)} | {_cell(b)} |")
    lines += ["", "## Targets", "", "| Target | Difference |", "|---|---|"]
    for row in comparison["targets"]:
        what = {"only_left": f"only in {left}", "only_right": f"only in {right}", "same": "same"}.get(
            row["status"], ", ".join(row["differences"])
        )
        lines.append(f"| {_cell(row['name'])} | {_cell(what)} |")
    lines += ["", "## Settings, templates and approvals", "", f"| | {left} | {right} |", "|---|---|---|"]
    for row in comparison["settings"]:
        lines.append(f"| {row['setting']} | {_cell(row['left'])} | {_cell(row['right'])} |")
    for name in ("default_template", "approval_policy"):
        pair = comparison[name]
        lines.append(f"| {name.replace('_', ' ')} | {_cell(pair['left'])} | {_cell(pair['right'])} |")
    lines += ["", "## Freezes", ""]
    freezes = comparison["freezes"]
    for key, label in (("both", "both"), ("left", f"{left} only"), ("right", f"{right} only")):
        for window in freezes[key]:
            lines.append(f"- {window['title']} ({label}): from {window['starts_at']} {window['rrule']}".rstrip())
    if not any(freezes.values()):
        lines.append("None.")
    return "\n".join(lines) + "\n"
