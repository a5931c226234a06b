"""MSAL for Python against azad's dev tenant over HTTPS.

MSAL is the judge of the dev tenant's fidelity: every flow below is MSAL's own code path, and
every access token it obtains is then validated by azad (the quickstart API called with it).
Run through tests/msal/run.sh, which starts the dev tenant and the quickstart and exports
AZAD_DEV_SETTINGS (the JSON of `dev_tenant --https --json`), AZAD_API_URL and
REQUESTS_CA_BUNDLE (the dev tenant's CA).

MSAL is configured as for any local authority: instance_discovery=False, so that it does not ask
login.microsoftonline.com about the authority (validate_authority=False would also skip that, by
treating the authority as "known to the developer"; instance_discovery=False is the documented
switch).
"""

import base64
import hashlib
import json
import os
from urllib.parse import parse_qs, urlparse

import msal
import requests

SETTINGS = json.load(open(os.environ["AZAD_DEV_SETTINGS"]))
API_URL = os.environ["AZAD_API_URL"]
AUTHORITY = SETTINGS["authority"]
API = SETTINGS["api"]
WEB = SETTINGS["web_app"]
PUBLIC = SETTINGS["public_client"]
MIDDLE = SETTINGS["middle_tier"]


def claims_of(jwt):
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def ok(result):
    assert "access_token" in result, json.dumps(result, indent=1)
    return result


def call_api(token, path="/api/claims"):
    return requests.get(API_URL + path, headers={"Authorization": "Bearer " + token}, timeout=10)


def assert_azad_accepts(token, path="/api/claims"):
    r = call_api(token, path)
    assert r.status_code == 200, (path, r.status_code, r.headers.get("www-authenticate"), r.text)
    return r


def confidential(client_id, credential, **kwargs):
    return msal.ConfidentialClientApplication(
        client_id, client_credential=credential, authority=AUTHORITY, instance_discovery=False, **kwargs
    )


def public(**kwargs):
    return msal.PublicClientApplication(PUBLIC["client_id"], authority=AUTHORITY, instance_discovery=False, **kwargs)


def test_authority_metadata_as_msal_reads_it():
    app = public()
    authority = app.authority
    assert authority.token_endpoint == AUTHORITY + "/oauth2/v2.0/token"
    assert authority.authorization_endpoint == AUTHORITY + "/oauth2/v2.0/authorize"
    assert authority.device_authorization_endpoint == AUTHORITY + "/oauth2/v2.0/devicecode"
    assert authority.tenant == SETTINGS["tenant_id"]
    doc = requests.get(SETTINGS["metadata_url"], timeout=10).json()
    assert doc["issuer"] == SETTINGS["issuer"]
    for key in ("jwks_uri", "end_session_endpoint"):
        assert doc[key].startswith(SETTINGS["authority_host"] + "/"), key


def test_client_credentials_with_a_secret():
    app = confidential(WEB["client_id"], WEB["client_secret"])
    result = ok(app.acquire_token_for_client(scopes=[API["default_scope"]]))
    assert result["token_source"] == "identity_provider"
    claims = claims_of(result["access_token"])
    assert claims["aud"] == API["client_id"] and "Admin" in claims["roles"]
    assert_azad_accepts(result["access_token"], "/api/admin")
    # MSAL's cache answers the second call.
    again = ok(app.acquire_token_for_client(scopes=[API["default_scope"]]))
    assert again["token_source"] == "cache"
    # A delegated route refuses the app token (no scope), as azad should.
    assert call_api(result["access_token"], "/api/claims").status_code == 403


def test_client_credentials_with_a_wrong_secret_is_an_entra_error():
    app = confidential(WEB["client_id"], "not-the-secret")
    result = app.acquire_token_for_client(scopes=[API["default_scope"]])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    assert result["error_description"].startswith("AADSTS7000215:")
    for key in ("timestamp", "trace_id", "correlation_id"):
        assert result.get(key), key
    # Entra echoes the client-request-id MSAL sends as the error's correlation_id.
    request_id = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
    raw = requests.post(app.authority.token_endpoint, headers={"client-request-id": request_id}, timeout=10,
                        data={"grant_type": "client_credentials", "client_id": WEB["client_id"],
                              "client_secret": "not-the-secret", "scope": API["default_scope"]})
    assert raw.status_code == 401 and raw.headers["client-request-id"] == request_id
    assert raw.json()["correlation_id"] == request_id
    assert "Correlation ID: " + request_id in raw.json()["error_description"]


def read(path):
    with open(path) as f:
        return f.read()


def test_client_credentials_with_a_certificate_sha1_thumbprint():
    cert = WEB["certificate"]
    credential = {"private_key": read(cert["key_file"]), "thumbprint": cert["thumbprint_sha1"]}
    result = ok(confidential(WEB["client_id"], credential).acquire_token_for_client(scopes=[API["default_scope"]]))
    assert_azad_accepts(result["access_token"], "/api/admin")


def test_client_credentials_with_a_certificate_sha256_and_x5c():
    cert = WEB["certificate"]
    credential = {"private_key": read(cert["key_file"]), "public_certificate": read(cert["cert_file"])}
    result = ok(confidential(WEB["client_id"], credential).acquire_token_for_client(scopes=[API["default_scope"]]))
    assert_azad_accepts(result["access_token"], "/api/admin")


def test_on_behalf_of_a_user():
    user_token = MIDDLE["user_token"]
    app = confidential(MIDDLE["client_id"], MIDDLE["client_secret"])
    result = ok(app.acquire_token_on_behalf_of(user_token, scopes=[API["scope"]]))
    claims = claims_of(result["access_token"])
    assert claims["oid"] == SETTINGS["user"]["oid"] and claims["azp"] == MIDDLE["client_id"]
    assert_azad_accepts(result["access_token"])
    # Entra's consent error for a scope the middle tier was not granted.
    refused = app.acquire_token_on_behalf_of(user_token, scopes=["api://azad-downstream/Data.Read"])
    assert refused["error"] == "invalid_grant" and refused["suberror"] == "consent_required", refused


def check_id_token(result, client_id, nonce_hash=None):
    idt = result["id_token_claims"]
    assert idt["aud"] == client_id
    assert idt["iss"] == SETTINGS["issuer"]
    assert idt["tid"] == SETTINGS["tenant_id"]
    assert idt["oid"] == SETTINGS["user"]["oid"]
    assert idt["preferred_username"] == SETTINGS["user"]["username"]
    assert idt["sub"]
    if nonce_hash:
        assert idt["nonce"] == nonce_hash


def check_account(app):
    accounts = app.get_accounts()
    assert len(accounts) == 1, accounts
    account = accounts[0]
    assert account["username"] == SETTINGS["user"]["username"]
    assert account["home_account_id"] == "{}.{}".format(SETTINGS["user"]["oid"], SETTINGS["tenant_id"])
    assert account["local_account_id"] == SETTINGS["user"]["oid"]
    return account


def test_device_code_flow():
    app = public()
    flow = app.initiate_device_flow(scopes=[API["scope"]])
    assert "user_code" in flow, flow
    assert flow["verification_uri"] == SETTINGS["device_login_url"]
    # The user signs in on another device: the dev tenant's sign-in page, over HTTPS.
    page = requests.get(SETTINGS["device_login_url"], params={"code": flow["user_code"]}, timeout=10)
    assert page.status_code == 200, page.text
    result = ok(app.acquire_token_by_device_flow(flow))
    check_id_token(result, PUBLIC["client_id"])
    check_account(app)
    assert_azad_accepts(result["access_token"])


def auth_code_sign_in(app, scopes):
    flow = app.initiate_auth_code_flow(scopes=scopes, redirect_uri=PUBLIC["redirect_uri"])
    assert flow["code_verifier"] and "code_challenge=" in flow["auth_uri"], flow
    # The dev tenant signs its only user in at once and redirects; follow it as a browser would.
    r = requests.get(flow["auth_uri"], allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    location = r.headers["Location"]
    assert location.startswith(PUBLIC["redirect_uri"]), location
    auth_response = {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}
    result = ok(app.acquire_token_by_auth_code_flow(flow, auth_response))
    nonce_hash = hashlib.sha256(flow["nonce"].encode("ascii")).hexdigest()
    return result, nonce_hash


def test_authorization_code_flow_with_pkce_then_refresh_through_msal_cache():
    app = public()
    result, nonce_hash = auth_code_sign_in(app, [API["scope"]])
    check_id_token(result, PUBLIC["client_id"], nonce_hash)
    assert "refresh_token" in result
    assert_azad_accepts(result["access_token"])
    account = check_account(app)

    cached = ok(app.acquire_token_silent([API["scope"]], account=account))
    assert cached["access_token"] == result["access_token"]
    assert cached["token_source"] == "cache"

    refreshed = ok(app.acquire_token_silent([API["scope"]], account=account, force_refresh=True))
    assert refreshed["token_source"] == "identity_provider"
    assert refreshed["access_token"] != result["access_token"]
    assert claims_of(refreshed["access_token"])["oid"] == SETTINGS["user"]["oid"]
    assert_azad_accepts(refreshed["access_token"])
    check_account(app)  # still one account: client_info matched


def test_a_wrong_pkce_verifier_is_refused():
    app = public()
    flow = app.initiate_auth_code_flow(scopes=[API["scope"]], redirect_uri=PUBLIC["redirect_uri"])
    location = requests.get(flow["auth_uri"], allow_redirects=False, timeout=10).headers["Location"]
    auth_response = {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}
    flow["code_verifier"] = "x" * 43
    result = app.acquire_token_by_auth_code_flow(flow, auth_response)
    assert result["error"] == "invalid_grant" and result["error_codes"] == [501481], result


def inject(fault, times=1, **params):
    r = requests.post(SETTINGS["faults_url"], data=dict(endpoint="token", fault=fault, times=times, **params), timeout=10)
    assert r.status_code == 200, r.text


def test_claims_challenge_surfaces_in_msal_result():
    app = public()
    result, _ = auth_code_sign_in(app, [API["scope"]])
    account = check_account(app)
    challenge = json.dumps({"access_token": {"acrs": {"essential": True, "value": "c1"}}})
    inject("interaction_required", claims=challenge)
    failed = app.acquire_token_silent_with_error([API["scope"]], account=account, force_refresh=True)
    assert failed["error"] == "interaction_required", failed
    assert failed["claims"] == challenge
    assert failed["error_codes"] == [50076]
    for key in ("error_description", "timestamp", "trace_id", "correlation_id"):
        assert failed.get(key), key
    # MSAL throttles the very same refresh for a while; the app answers the challenge by asking
    # again with the claims (the fault was for one request).
    again = ok(app.acquire_token_silent([API["scope"]], account=account, claims_challenge=challenge))
    assert again["token_source"] == "identity_provider"
    assert_azad_accepts(again["access_token"])
