"""The registry's front page: what it holds, every version with its identifier, and how to point Dify at it."""

from __future__ import annotations

from html import escape

from plugdock.registry.store import Catalog


def render_page(catalog: Catalog, base_url: str, signed: bool) -> str:
    base = escape(base_url.rstrip("/"))
    sections = []
    for plugin_id in catalog.plugin_ids():
        versions = catalog.versions(plugin_id)
        latest = next((v for v in versions if not v.yanked), None)
        label = (latest or versions[0]).declaration.get("label") or {}
        brief = (latest or versions[0]).declaration.get("description") or {}
        rows = "".join(
            f"<tr{' class=yanked' if v.yanked else ''}><td>{escape(v.version)}</td>"
            f"<td><code>{escape(v.unique_identifier)}</code></td><td>{v.size // 1024} KiB</td>"
            f"<td>{'signed' if v.signed else 'unsigned'}</td><td>{v.install_count}</td>"
            f"<td>{'yanked: ' + escape(v.yank_reason or '-') if v.yanked else ''}</td>"
            f"<td><a href=\"{base}/api/v1/plugins/{escape(v.org)}/{escape(v.name)}/{escape(v.version)}/download\">"
            "download</a></td></tr>"
            for v in versions)
        sections.append(
            f"<section><h2>{escape(str(label.get('en_US', plugin_id)))} <small>{escape(plugin_id)}</small></h2>"
            f"<p>{escape(str(brief.get('en_US', '')))}</p>"
            f"<p>latest: {escape(latest.version) if latest else 'none (every version is yanked)'} · "
            f"{escape((latest or versions[0]).category)} · {catalog.installs(plugin_id)} installs</p>"
            "<table><tr><th>version</th><th>unique identifier</th><th>size</th><th>signature</th><th>installs</th>"
            f"<th></th><th></th></tr>{rows}</table></section>")
    body = "".join(sections) or "<p>No plugins yet: <code>plugdock publish registry URL DIR --token T</code></p>"
    key_note = (f"Packages are signed with this registry's key (<a href=\"{base}/api/v1/key\">public key</a>): "
                "daemons trust it with THIRD_PARTY_SIGNATURE_VERIFICATION_ENABLED=true and "
                "THIRD_PARTY_SIGNATURE_VERIFICATION_PUBLIC_KEYS=&lt;that file&gt;." if signed
                else "Packages are served as uploaded (this registry has no signing key).")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>plugdock registry</title>
<style>body{{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}}
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.3rem;text-align:left}}
code{{font-size:.8rem}}.yanked{{color:#999;text-decoration:line-through}}small{{color:#666}}</style></head>
<body><h1>plugdock registry</h1>
<p>A self-hosted Dify Marketplace: set <code>MARKETPLACE_API_URL={base}</code> (and <code>MARKETPLACE_ENABLED=true
</code>) in Dify's API. {key_note}</p>{body}</body></html>
"""
