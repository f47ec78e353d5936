from django.conf import settings


def site(request):
    context: dict[str, object] = {"SITE_URL": settings.SITE_URL}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        from consent.policy import pending_acknowledgement

        # The banner stays on every page until the user has read the version.
        context["policy_to_acknowledge"] = pending_acknowledgement(user)
    return context
