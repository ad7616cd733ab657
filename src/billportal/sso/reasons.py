"""Reason codes for sign-in attempts: stable, machine-readable, explained in words.

The codes are a public contract: they appear in the sign-in log, the CSV export,
the ``?error=`` parameter of a company's error URL, ``billportal sso-explain`` and
``docs/integration.md``. Add codes; never rename or reuse one.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a sign-in attempt ended as it did."""

    OK = "ok"
    TOKEN_TOO_LONG = "token_too_long"
    TOKEN_MALFORMED = "token_malformed"
    HEADER_INVALID = "header_invalid"
    PAYLOAD_INVALID = "payload_invalid"
    ALG_NOT_ALLOWED = "alg_not_allowed"
    TYP_INVALID = "typ_invalid"
    CRIT_NOT_SUPPORTED = "crit_not_supported"
    HEADER_KEY_PARAMETER = "header_key_parameter"
    KID_INVALID = "kid_invalid"
    KID_UNKNOWN = "kid_unknown"
    NO_USABLE_KEY = "no_usable_key"
    KEY_REVOKED = "key_revoked"
    KEY_RETIRED = "key_retired"
    SIGNATURE_INVALID = "signature_invalid"
    EXP_MISSING = "exp_missing"
    EXP_INVALID = "exp_invalid"
    EXPIRED = "expired"
    NBF_INVALID = "nbf_invalid"
    NOT_YET_VALID = "not_yet_valid"
    IAT_INVALID = "iat_invalid"
    IAT_IN_FUTURE = "iat_in_future"
    IAT_MISSING = "iat_missing"
    ISSUED_BEFORE_CUTOFF = "issued_before_cutoff"
    LIFETIME_TOO_LONG = "lifetime_too_long"
    SUB_MISSING = "sub_missing"
    SUB_INVALID = "sub_invalid"
    ISSUER_NOT_ALLOWED = "issuer_not_allowed"
    ISS_INVALID = "iss_invalid"
    JTI_REQUIRED = "jti_required"
    JTI_INVALID = "jti_invalid"
    JTI_REPLAYED = "jti_replayed"
    CUSTOMER_UNKNOWN = "customer_unknown"
    SSO_DISABLED = "sso_disabled"
    CROSS_SITE_REQUEST = "cross_site_request"
    RATE_LIMITED = "rate_limited"
    FRAME_NOT_ALLOWED = "frame_not_allowed"
    # Email sign-in (method "email"):
    EMAIL_LINK_UNKNOWN = "email_link_unknown"
    EMAIL_LINK_EXPIRED = "email_link_expired"
    EMAIL_LINK_USED = "email_link_used"
    EMAIL_BUTTON_INVALID = "email_button_invalid"
    EMAIL_CODE_WRONG = "email_code_wrong"
    EMAIL_CODE_EXHAUSTED = "email_code_exhausted"


EXPLANATIONS: dict[Reason, tuple[str, str]] = {
    # reason: (what happened, what to do about it)
    Reason.OK: ("The token is valid: it signs the customer in.", "Nothing."),
    Reason.TOKEN_TOO_LONG: (
        "The token is longer than 4 KiB.",
        "Send only the claims billportal reads: sub, iss, exp, and optionally iat, nbf, jti.",
    ),
    Reason.TOKEN_MALFORMED: (
        "The token is not three base64url segments (URL-safe alphabet, no padding) joined by dots.",
        "Use a JWT library's encode function and paste its output unchanged into the URL.",
    ),
    Reason.HEADER_INVALID: (
        "The JWT header is not a UTF-8 JSON object with unique member names.",
        "Let your JWT library build the header.",
    ),
    Reason.PAYLOAD_INVALID: (
        "The JWT payload is not a UTF-8 JSON object with unique member names.",
        "Pass a map or dictionary of claims to your JWT library.",
    ),
    Reason.ALG_NOT_ALLOWED: (
        "The header's alg is not HS256.",
        "Sign with HS256 and your SSO key.",
    ),
    Reason.TYP_INVALID: ("The header's typ is present and is not JWT.", "Leave typ out or set it to JWT."),
    Reason.CRIT_NOT_SUPPORTED: (
        "The header has a crit parameter; billportal understands no critical extensions.",
        "Remove crit from the header.",
    ),
    Reason.HEADER_KEY_PARAMETER: (
        "The header carries jku, jwk, x5u or x5c; billportal only uses the company's own keys.",
        "Remove those parameters; set kid to your key's id if you want to name the key.",
    ),
    Reason.KID_INVALID: ("The header's kid is not a short string.", "Use the kid shown in the dashboard."),
    Reason.KID_UNKNOWN: (
        "The header's kid names no SSO key of this company.",
        "Use the kid shown under Settings > Developers > Single Sign-On, or leave kid out.",
    ),
    Reason.NO_USABLE_KEY: (
        "The company has no active SSO key.",
        "Create or rotate a key in the dashboard.",
    ),
    Reason.KEY_REVOKED: (
        "The token is signed with an SSO key that has been revoked.",
        "Deploy the company's current SSO key to your backend.",
    ),
    Reason.KEY_RETIRED: (
        "The token is signed with a rotated-out SSO key whose grace period has ended.",
        "Deploy the company's current SSO key to your backend.",
    ),
    Reason.SIGNATURE_INVALID: (
        "The signature does not match any of the company's usable SSO keys.",
        "Sign with the SSO key from the dashboard, as the raw string shown (not decoded).",
    ),
    Reason.EXP_MISSING: ("The payload has no exp claim.", "Set exp to a UNIX time a few minutes ahead."),
    Reason.EXP_INVALID: (
        "The exp claim is not a whole number of seconds in a sane range.",
        "Set exp to an integer UNIX timestamp (seconds), not milliseconds or a string.",
    ),
    Reason.EXPIRED: (
        "The link has expired.",
        "Make a fresh link each time the customer clicks; check your server's clock.",
    ),
    Reason.NBF_INVALID: ("The nbf claim is not a whole number of seconds.", "Use an integer UNIX timestamp."),
    Reason.NOT_YET_VALID: ("The nbf claim is in the future.", "Check your server's clock, or leave nbf out."),
    Reason.IAT_INVALID: ("The iat claim is not a whole number of seconds.", "Use an integer UNIX timestamp."),
    Reason.IAT_IN_FUTURE: ("The iat claim is in the future.", "Check your server's clock."),
    Reason.IAT_MISSING: (
        "The company rejects links issued before a cutoff, and this token has no iat.",
        "Set iat to the current UNIX time when you make the token.",
    ),
    Reason.ISSUED_BEFORE_CUTOFF: (
        "The link was issued before the company's cutoff (all earlier links were revoked).",
        "Make a fresh link; if the key leaked, rotate it too.",
    ),
    Reason.LIFETIME_TOO_LONG: (
        "The link lives longer than the company's maximum link lifetime.",
        "Make exp closer to iat (or to now).",
    ),
    Reason.SUB_MISSING: ("The payload has no sub claim.", "Set sub to the billportal customer id."),
    Reason.SUB_INVALID: (
        "The sub claim is not a positive customer id (a JSON integer or a string of digits).",
        'Set sub to the customer\'s id, such as 1234 or "1234".',
    ),
    Reason.ISSUER_NOT_ALLOWED: (
        "The iss claim is not in the company's list of allowed issuers.",
        "Set iss to one of the allowed issuers, or change the list in the dashboard.",
    ),
    Reason.ISS_INVALID: ("The iss claim is not a string.", "Set iss to a short string naming your service."),
    Reason.JTI_REQUIRED: (
        "The company requires single-use links, and the token has no jti.",
        "Set jti to a fresh random string for each link.",
    ),
    Reason.JTI_INVALID: ("The jti claim is not a string of 1 to 255 characters.", "Use a random UUID."),
    Reason.JTI_REPLAYED: (
        "This single-use link has already been used.",
        "Make a fresh link (with a new jti) each time.",
    ),
    Reason.CUSTOMER_UNKNOWN: (
        "The sub claim names no customer of this company.",
        "Create the customer first, and use its billportal id.",
    ),
    Reason.SSO_DISABLED: ("Single sign-on is turned off for this company.", "Turn it on in the dashboard."),
    Reason.CROSS_SITE_REQUEST: (
        "The browser sent the link as a cross-site subresource (an image or a script), not a navigation.",
        "Link to the URL or redirect the browser to it; do not embed it.",
    ),
    Reason.RATE_LIMITED: (
        "Too many failed sign-ins came from this address or for this company.",
        "Wait and retry; fix the cause of the failures shown in the sign-in log.",
    ),
    Reason.FRAME_NOT_ALLOWED: (
        (
            "The link was opened in a frame of a site that is not among the sites allowed to embed the portal, "
            "or the frame's page sent no Referer."
        ),
        (
            "List your app's origin under Single Sign-On > Embedding, and keep the frame's referrer policy "
            "sending at least the origin."
        ),
    ),
    Reason.EMAIL_LINK_UNKNOWN: (
        "The emailed sign-in link names no link this company sent.",
        "Ask for a new link on the portal's sign-in page; copy the whole link from the email.",
    ),
    Reason.EMAIL_LINK_EXPIRED: (
        "The emailed sign-in link (or its code) is older than 15 minutes.",
        "Ask for a new link on the portal's sign-in page.",
    ),
    Reason.EMAIL_LINK_USED: (
        "The emailed sign-in link (or its code) has already signed someone in.",
        "Ask for a new link on the portal's sign-in page.",
    ),
    Reason.EMAIL_BUTTON_INVALID: (
        "The confirmation button's form did not come from the link's own confirmation page.",
        "Open the emailed link and press the button on the page it shows.",
    ),
    Reason.EMAIL_CODE_WRONG: (
        "The 6-digit code does not match any live link sent to that address.",
        "Type the code from the newest email; ask for a new one after a few tries.",
    ),
    Reason.EMAIL_CODE_EXHAUSTED: (
        "The code was tried too many times, and no longer works.",
        "Ask for a new link on the portal's sign-in page.",
    ),
}


def explain(reason: Reason) -> tuple[str, str]:
    """What the reason means, and what to do about it."""
    return EXPLANATIONS[reason]
