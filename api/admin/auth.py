"""Signing in and out: with an API token, or with a one-time link (`compute admin-link`)."""

from __future__ import annotations

from typing import Any

import redis
from flask import redirect, render_template, request, url_for

from compute.server.extensions import db
from compute.server.models import User
from compute.server.sign_in_links import read_link_token, spend_nonce
from compute.server.tokens import TokenRefused, verify_token

from ..broker import api_broker
from .blueprint import blueprint, error_page, safe_next
from .session import sign_in, sign_out


@blueprint.route("/sign-in", methods=["GET", "POST"])
def sign_in_page() -> Any:
    target = request.values.get("next")
    if request.method == "GET":
        return render_template("admin/sign_in.html", next=target, error=None)
    try:
        bearer = verify_token(request.form.get("token", "").strip())
    except TokenRefused as refusal:
        page = render_template("admin/sign_in.html", next=target, error=str(refusal))
        return page, 401
    sign_in(bearer.user, bearer.token.id)
    return redirect(safe_next(target))


@blueprint.post("/sign-out")
def sign_out_now() -> Any:
    sign_out()
    return redirect(url_for("admin.sign_in_page"))


@blueprint.route("/link/<token>", methods=["GET", "POST"])
def follow_link(token: str) -> Any:
    """A one-time link: its GET only asks to confirm, so that a link preview or a
    prefetch, which GET what they see, cannot spend it; the POST signs in."""
    try:
        link = read_link_token(token)
    except TokenRefused as refusal:
        return error_page(410, f"{refusal} Ask for a new one with `compute admin-link`.")
    if request.method == "GET":
        return render_template("admin/link.html", token=token)
    client = api_broker()
    if client is None:
        return error_page(503, "One-time links need the broker (REDIS_URL); sign in with a token.")
    try:
        spent_now = spend_nonce(client, link)
    except redis.RedisError:
        return error_page(503, "The broker did not answer; try the link again in a moment.")
    if not spent_now:
        return error_page(410, "This sign-in link has been used already.")
    user = db.session.get(User, link.user_id)
    if user is None:
        return error_page(410, "This sign-in link's user no longer exists.")
    sign_in(user)
    return redirect(url_for("admin.dashboard"))
