"""The Marketplace pull request: fork langgenius/dify-plugins, branch, add the package, open the PR.

The body is the repository's pull-request template with what ``publish check`` established ticked; what only the
author can promise (the agreement, testing on Dify Cloud, the risk level) is left for them to tick."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field

from plugdock.publishing.checks import CheckResult
from plugdock.publishing.github import GitHub, GitHubError
from plugdock.publishing.source import Candidate

UPSTREAM = "langgenius/dify-plugins"
BASE = "main"
FORK_WAIT_TRIES = 10


@dataclass
class PullRequestPlan:
    upstream: str
    fork: str | None  # None: the token's own fork, made or found by POST /forks
    branch: str
    path: str
    title: str
    body: str
    new_plugin: bool | None = None
    steps: list[str] = field(default_factory=list)


def branch_name(c: Candidate) -> str:
    return f"bump-{c.name}-plugin-{c.version}"


def _ticked(ok: bool, text: str) -> str:
    return f"- [{'x' if ok else ' '}] {text}"


def pull_request_body(c: Candidate, results: list[CheckResult], *, new_plugin: bool | None) -> str:
    by = {r.name: r for r in results}

    def clean(*names: str) -> bool:
        return all(n in by and by[n].ok and not by[n].skipped and not by[n].warnings for n in names)

    description = (c.manifest.get("description") or {}).get("en_US", "") if isinstance(
        c.manifest.get("description"), dict) else ""
    table = "\n".join(f"| {r.name} | {r.step} | {r.status} | {r.message.replace('|', '/')[:160]} |" for r in results)
    return "\n".join([
        "# Plugin Submission", "", "## Plugin information", "",
        f"- **Author**: {c.author}", f"- **Plugin name**: {c.name}", f"- **Version**: {c.version}",
        f"- **Source repository**: {c.manifest.get('repo') or ''}",
        f"- **Contact**: {c.manifest.get('contact') or ''}", "",
        "## Submission type", "",
        _ticked(new_plugin is True, "New plugin"), _ticked(new_plugin is False, "Version update"), "",
        "## What changed", "", str(description) or "<!-- Briefly describe what the plugin does or what changed. -->",
        "", "## Risk level", "", "- [ ] Low risk", "- [ ] Medium risk", "- [ ] High risk", "",
        "<!-- Select one based on the risk classification in docs/plugin-submission-requirements.md. -->", "",
        "## Required checks", "",
        "<!-- Ticked by plugdock publish check where a check establishes it; the rest are yours to promise. -->",
        "- [ ] I have read and followed the [Marketplace submission requirements]"
        "(docs/plugin-submission-requirements.md).",
        "- [ ] I have read and comply with the Plugin Developer Agreement.",
        "- [ ] I tested this plugin on Dify Community Edition and Dify Cloud, or documented any limitation below.",
        _ticked(clean("package_contents"), "The package contains only files needed at runtime."),
        _ticked(clean("package_contents"), "The package does not contain secrets, local credentials, `.env` files, "
                "`.git` directories, virtual environments, caches, logs, or IDE files."),
        "- [ ] The package does not contain executables or bundled binaries, or I explained why they are required "
        "below.",
        _ticked(clean("readme_metadata"), "The plugin README includes setup steps, usage instructions, required "
                "APIs or credentials, connection requirements, and the source repository link."),
        _ticked(clean("manifest_privacy"), "The plugin includes `PRIVACY.md` or a hosted privacy policy, and "
                "`manifest.yaml` references it."),
        _ticked(clean("readme_metadata"), "All user-facing text is primarily in English."), "",
        "## Security and privacy notes", "", "<!-- List any sensitive capability, or write \"None\". -->", "",
        "## Local validation", "", f"`plugdock publish check` on `{c.asset_name}`:", "",
        "| Check | Workflow step | Status | Detail |", "|---|---|---|---|", table, "",
        "## Reviewer notes", "", "<!-- Optional: migration notes, known limitations, or breaking changes. -->", "",
    ])


def plan(c: Candidate, results: list[CheckResult], *, fork: str | None, upstream: str = UPSTREAM,
         new_plugin: bool | None = None) -> PullRequestPlan:
    branch, path = branch_name(c), c.marketplace_path
    kind = "update" if new_plugin is False else "new plugin" if new_plugin else "submission"
    steps = [
        f"fork {upstream}" if fork is None else f"use the fork {fork}",
        f"create branch {branch} in the fork from {upstream}@{BASE} (or reuse it)",
        f"commit {path} ({len(c.data)} bytes) to {branch}",
        f"open a pull request {fork or 'FORK_OWNER'}:{branch} -> {upstream}:{BASE} (or reuse the open one)",
    ]
    return PullRequestPlan(upstream=upstream, fork=fork, branch=branch, path=path,
                           title=f"{c.author}/{c.name} {c.version} ({kind})",
                           body=pull_request_body(c, results, new_plugin=new_plugin), new_plugin=new_plugin,
                           steps=steps)


def is_new_plugin(gh: GitHub, c: Candidate, upstream: str = UPSTREAM) -> bool:
    return not gh.path_exists(upstream, f"{c.author}/{c.name}", BASE)


def open_pull_request(gh: GitHub, p: PullRequestPlan, c: Candidate) -> str:
    """Carry the plan out; every step reuses what a previous run left (fork, branch, file, open PR)."""
    fork = p.fork or str(gh.fork(p.upstream)["full_name"])
    if p.fork:
        gh.repository(fork)  # a wrong --fork is named before anything is written
    sha = gh.branch_sha(p.upstream, BASE)
    for attempt in range(FORK_WAIT_TRIES):  # a new fork takes GitHub a moment to fill
        try:
            if gh.ref_sha(fork, p.branch) is None:
                gh.create_branch(fork, p.branch, sha)
            break
        except GitHubError as exc:
            if exc.status not in (404, 409) or attempt == FORK_WAIT_TRIES - 1:
                raise
            time.sleep(min(2**attempt, 8))
    existing = gh.file_sha(fork, p.path, p.branch)
    gh.put_file(fork, p.path, base64.b64encode(c.data).decode("ascii"),
                f"{'update' if existing else 'add'} {p.path}", p.branch, existing)
    head = f"{fork.split('/')[0]}:{p.branch}"
    pulls = gh.open_pulls(p.upstream, head)
    if pulls:
        return str(pulls[0]["html_url"])
    return str(gh.create_pull(p.upstream, title=p.title, head=head, base=BASE, body=p.body)["html_url"])
