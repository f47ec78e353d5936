from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User

DEV_ACCOUNTS = [
    # (email, display name, password, staff)
    ("admin@localhost", "Portal Admin", "admin-dev-password", True),
    ("artist@localhost", "Demo Artist", "artist-dev-password", False),
]


class Command(BaseCommand):
    help = "Create a development admin and a demo artist (DEBUG only). Safe to run repeatedly."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("seed_dev creates accounts with published passwords; it refuses to run with DEBUG off.")
        with transaction.atomic():
            for email, display_name, password, staff in DEV_ACCOUNTS:
                user, created = User.objects.get_or_create(
                    email=email,
                    defaults={"display_name": display_name, "is_staff": staff, "is_superuser": staff},
                )
                if created:
                    user.set_password(password)
                    user.save(update_fields=["password"])
                EmailAddress.objects.update_or_create(
                    user=user, email=email, defaults={"verified": True, "primary": True}
                )
                state = "created" if created else "exists"
                self.stdout.write(f"  {'staff admin' if staff else 'demo artist'}: {email} / {password} ({state})")
