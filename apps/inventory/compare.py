"""How two environments differ: deployed versions, variables, targets, settings, templates, approval policies,
policy sets and freezes; as one JSON-ready dict (the API answer and the page's data) and as a Markdown report.

Secret variables are compared by the keyed hash taken when they were written (`Variable.fingerprint`), so no
secret is decrypted here; and only for people who may manage both environments, since telling whether two
secrets are equal lets whoever can set one confirm a guess of the other. The answer says same or different,
never a value or a hash.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.db.models import Q
from django.utils import timezone

from apps.approvals.selectors import policy_summary
from apps.catalog.models import Artifact
from apps.catalog.selectors import applications_visible_to
from apps.core.permissions import can
from apps.environments.models import MASK, Environment, Target, Variable
from apps.policies.services import policy_sets_for
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


def _compared(variable: Variable) -> tuple:
    return variable.secret, variable.fingerprint if variable.secret else variable.value


def _variables(left: Environment, right: Environment, *, secrets: bool) -> tuple[list[dict], int, int]:
    """Variables that differ (present on one side only, or with another value or secrecy), how many are the same,
    and how many secrets on both sides were not compared (`secrets` False). Target overrides are matched by
    target name."""
    sides: dict[tuple, dict[int, Variable]] = {}
    for variable in Variable.objects.filter(environment__in=[left, right]).select_related("target"):
        key = (variable.target.name if variable.target else None, variable.name)
        sides.setdefault(key, {})[variable.environment_id] = variable
    rows, same, unknown = [], 0, 0
    for (target, name), found in sorted(sides.items(), key=lambda item: (item[0][0] or "", item[0][1])):
        a, b = found.get(left.pk), found.get(right.pk)
        if a and b and a.secret and b.secret and not (secrets and a.fingerprint and b.fingerprint):
            unknown += 1
            continue
        if a and b and _compared(a) == _compared(b):
            same += 1
            continue
        status = "only_left" if b is None else "only_right" if a is None else "different"
        rows.append({"name": name, "target": target, "status": status, "left": _shown(a), "right": _shown(b)})
    return rows, same, unknown


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
        .defer("deployment__plan")
        .order_by("application_id", "-deployment_id", "target__name")
    )
    for installation in rows:
        version = installation.deployment.template_version
        entry = found.setdefault(
            installation.application_id,
            {
                "artifact": installation.artifact,
                "template": f"{version.template.slug} v{version.number}",
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


def _commits(pairs: dict) -> dict[int, dict]:
    """Per application whose two sides run builds with different commits: the builds registered between the two
    versions (the older excluded) with their commits, and a link comparing the commits on the repository's
    host. One query for all of them."""
    ranges = {}
    for application, (a, b) in pairs.items():
        if a.commit and b.commit and a.commit != b.commit:
            ranges[application] = sorted((a, b), key=lambda artifact: artifact.version_key)
    if not ranges:
        return {}
    between = Q()
    for application, (low, high) in ranges.items():
        between |= Q(application=application, version_key__gt=low.version_key, version_key__lte=high.version_key)
    builds: dict[int, list] = {application.pk: [] for application in ranges}
    for build in Artifact.objects.filter(between).exclude(commit="").order_by("application_id", "-version_key"):
        if len(builds[build.application_id]) < BUILDS_BETWEEN_LIMIT:
            builds[build.application_id].append(
                {"version": build.version, "commit": build.commit, "branch": build.branch}
            )
    return {
        application.pk: {
            "from": low.commit,
            "to": high.commit,
            "builds": builds[application.pk],
            "compare_url": _compare_url(application.repository_url, low.commit, high.commit),
        }
        for application, (low, high) in ranges.items()
    }


def _applications(user, left: Environment, right: Environment) -> list[dict]:
    applications = applications_visible_to(user)
    a_side, b_side = _deployed(left, applications), _deployed(right, applications)
    listed = list(applications.filter(pk__in=set(a_side) | set(b_side)))
    same = {
        application.pk
        for application in listed
        if application.pk in a_side
        and application.pk in b_side
        and set(a_side[application.pk]["versions"]) == set(b_side[application.pk]["versions"])
    }
    commits = _commits(
        {
            application: (a_side[application.pk]["artifact"], b_side[application.pk]["artifact"])
            for application in listed
            if application.pk in a_side and application.pk in b_side and application.pk not in same
        }
    )
    return [
        {
            "application": application.slug,
            "name": application.name,
            "status": "same"
            if application.pk in same
            else "only_left"
            if application.pk not in b_side
            else "only_right"
            if application.pk not in a_side
            else "different",
            "left": _side(a_side.get(application.pk)),
            "right": _side(b_side.get(application.pk)),
            "commits": commits.get(application.pk),
        }
        for application in listed
    ]


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
    secrets = can(user, "manage", left) and can(user, "manage", right)
    variables, same_variables, secrets_not_compared = _variables(left, right, secrets=secrets)
    return {
        "left": {"slug": left.slug, "name": left.name, "tier": left.tier},
        "right": {"slug": right.slug, "name": right.name, "tier": right.tier},
        "generated_at": timezone.now().isoformat(),
        "applications": _applications(user, left, right),
        "variables": variables,
        "identical_variables": same_variables,
        "secrets_not_compared": secrets_not_compared,
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
        "approval_policy": _pair(policy_summary(left), policy_summary(right)),
        "policy_sets": _pair(_policy_sets(left), _policy_sets(right)),
        "freezes": _freezes_pair(left, right),
    }


def _policy_sets(environment: Environment) -> list[str]:
    return [policy_set.slug for policy_set in policy_sets_for(environment)]


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


def _approvals(policy: dict | None) -> str:
    if policy is None:
        return "none"
    teams = ", ".join(policy["eligible_teams"]) or "any team with approve"
    return f"{policy['required_approvals']} of {teams}"


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
    if comparison["secrets_not_compared"]:
        lines[-1:-1] = [f"{comparison['secrets_not_compared']} secrets on both sides not compared.", ""]
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
    lines += ["", "## Settings, templates and policies", "", f"| | {left} | {right} |", "|---|---|---|"]
    for row in comparison["settings"]:
        lines.append(f"| {row['setting']} | {_cell(row['left'])} | {_cell(row['right'])} |")
    pair = comparison["default_template"]
    lines.append(f"| default template | {_cell(pair['left'])} | {_cell(pair['right'])} |")
    pair = comparison["approval_policy"]
    lines.append(f"| approvals | {_approvals(pair['left'])} | {_approvals(pair['right'])} |")
    pair = comparison["policy_sets"]
    lines.append(f"| policy sets | {_cell(', '.join(pair['left']))} | {_cell(', '.join(pair['right']))} |")
    lines += ["", "## Freezes", ""]
    freezes = comparison["freezes"]
    for key, label in (("both", "both"), ("left", f"{left} only"), ("right", f"{right} only")):
        for window in freezes[key]:
            lines.append(f"- {window['title']} ({label}): from {window['starts_at']} {window['rrule']}".rstrip())
    if not any(freezes.values()):
        lines.append("None.")
    return "\n".join(lines) + "\n"
