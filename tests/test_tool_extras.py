"""Tool-provider OAuth, runtime parameters and dynamic-select options, through the same executor the runtime uses."""

from __future__ import annotations

import binascii
from pathlib import Path

from plugdock.testing import PluginTestClient

from conftest import make_plugin

PROVIDER = '''
from plugdock.sdk import ToolOAuthCredentials, ToolProvider


class P(ToolProvider):
    def _validate_credentials(self, credentials):
        pass

    def _oauth_get_authorization_url(self, redirect_uri, system_credentials):
        return f"https://auth.example/authorize?client_id={system_credentials['client_id']}&redirect={redirect_uri}"

    def _oauth_get_credentials(self, redirect_uri, system_credentials, request):
        return ToolOAuthCredentials(credentials={"access_token": "tok-" + request.args["code"]}, expires_at=1234)

    def _oauth_refresh_credentials(self, redirect_uri, system_credentials, credentials):
        return ToolOAuthCredentials(credentials={"access_token": credentials["access_token"] + "-fresh"},
                                    expires_at=None)
'''

TOOL = '''
from plugdock.sdk import I18nObject, ParameterOption, Tool


class T(Tool):
    def _invoke(self, tool_parameters):
        yield self.create_text_message(self.runtime.credentials.get("access_token", "none"))

    def _get_runtime_parameters(self):
        return [{"name": "extra", "type": "string"}]

    def _fetch_parameter_options(self, parameter):
        return [ParameterOption(value=f"{parameter}-1", label=I18nObject(en_US="One"))]
'''


def client(tmp_path: Path) -> PluginTestClient:
    root = make_plugin(tmp_path / "oauth", name="oauth")
    (root / "provider" / "oauth.py").write_text(PROVIDER)
    (root / "tools" / "oauth.py").write_text(TOOL)
    return PluginTestClient(root)


def test_oauth_flow(tmp_path: Path) -> None:
    c = client(tmp_path)
    url = c.request("oauth", "get_authorization_url", {"provider": "oauth", "redirect_uri": "https://cb",
                                                       "system_credentials": {"client_id": "abc"}})
    assert url.chunks == [{"authorization_url": "https://auth.example/authorize?client_id=abc&redirect=https://cb"}]
    raw = binascii.hexlify(b"GET /cb?code=xyz HTTP/1.1\r\nHost: h\r\n\r\n").decode()
    creds = c.request("oauth", "get_credentials", {"provider": "oauth", "redirect_uri": "https://cb",
                                                   "system_credentials": {}, "raw_http_request": raw})
    assert creds.chunks == [{"metadata": {}, "credentials": {"access_token": "tok-xyz"}, "expires_at": 1234}]
    fresh = c.request("oauth", "refresh_credentials", {"provider": "oauth", "redirect_uri": "https://cb",
                                                       "system_credentials": {},
                                                       "credentials": {"access_token": "tok"}})
    assert fresh.chunks == [{"credentials": {"access_token": "tok-fresh"}, "expires_at": -1}]
    used = c.request("tool", "invoke_tool", {"provider": "oauth", "tool": "oauth", "tool_parameters": {},
                                             "credentials": {"access_token": "tok-xyz"}, "credential_type": "oauth2"})
    assert used.text == "tok-xyz"


def test_runtime_parameters_and_dynamic_options(tmp_path: Path) -> None:
    c = client(tmp_path)
    params = c.request("tool", "get_tool_runtime_parameters", {"provider": "oauth", "tool": "oauth",
                                                               "credentials": {}})
    assert params.chunks == [{"parameters": [{"name": "extra", "type": "string"}]}]
    options = c.request("dynamic_parameter", "fetch_parameter_options", {
        "provider": "oauth", "provider_action": "oauth", "parameter": "city", "credentials": {}})
    assert options.chunks == [{"options": [{"value": "city-1", "label": {
        "zh_Hans": "One", "pt_BR": "One", "ja_JP": "One", "en_US": "One"}, "icon": None}]}]


def test_oauth_not_implemented_is_a_clear_error(tmp_path: Path) -> None:
    root = make_plugin(tmp_path / "plain", name="plain")
    result = PluginTestClient(root).request("oauth", "get_authorization_url", {
        "provider": "plain", "redirect_uri": "x", "system_credentials": {}})
    assert result.error is not None and result.error["error_type"] == "NotImplementedError"
    assert "_oauth_get_authorization_url" in result.error["message"]
