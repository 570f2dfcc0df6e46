"""Run every Marketplace check in the order the pull-request workflow runs them."""

from __future__ import annotations

from collections.abc import Callable

from plugdock.publishing import checks as static
from plugdock.publishing import live_checks as live
from plugdock.publishing.checks import CheckResult
from plugdock.publishing.install_check import check_plugin_install
from plugdock.publishing.source import Candidate


def run_checks(c: Candidate, *, marketplace_url: str | None = None,
               released: Callable[[str, str], bool] | None = None, resolve: bool = True,
               install: bool = True) -> list[CheckResult]:
    results = [
        static.check_pkg_paths(c), static.check_required_files(c), static.check_manifest_author(c),
        static.check_manifest_metadata(c), static.check_manifest_privacy(c), static.check_created_at(c),
        static.check_plugin_icon(c), static.check_readme_metadata(c),
        live.check_version_exists(c, marketplace_url=marketplace_url, released=released),
        live.check_package_dependencies(c), live.check_sdk_version(c),
        static.check_package_contents(c), static.check_package_size(c), static.check_python_compile(c),
    ]
    if resolve:
        results.append(live.check_plugin_deps(c))
    else:
        results.append(CheckResult("plugin_deps", "Check Plugin Deps", True, "skipped (--no-resolve)", skipped=True))
    failed_before = any(not r.ok for r in results)
    if not install:
        results.append(CheckResult("plugin_install", "Check Plugin Install", True, "skipped (--no-install)",
                                   skipped=True))
    elif failed_before and not resolve_ok(results):
        results.append(CheckResult("plugin_install", "Check Plugin Install", True,
                                   "skipped: requirements.txt does not resolve", skipped=True))
    else:
        results.append(check_plugin_install(c))
    return results


def resolve_ok(results: list[CheckResult]) -> bool:
    return all(r.ok for r in results if r.name == "plugin_deps")


def passed(results: list[CheckResult]) -> bool:
    return all(r.ok for r in results)
