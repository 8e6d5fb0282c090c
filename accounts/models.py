"""Tenants, members, invitations and API keys.

Every tenant-owned row in the project inherits `TenantOwned`, whose manager
refuses a query with no tenant (`TenantScopeError`) instead of returning every
row (fail closed): rows come through `for_tenant(tenant)`, and the rare query
that must span tenants says `unscoped()`.
"""

import hashlib
import hmac
import secrets
import uuid
import zoneinfo
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import OuterRef
from django.utils import timezone

# --- Users ----------------------------------------------------------------------


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, username):
        # Emails are stored lower-cased; log-in must not depend on the case typed.
        return self.get(email__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in. The email is the login."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    def __str__(self):
        return self.email

    def clean(self):
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email).lower()

    def get_full_name(self):
        return self.full_name or self.email

    def get_short_name(self):
        return self.full_name.split(" ")[0] if self.full_name else self.email


# --- Tenants --------------------------------------------------------------------


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"“{value}” is not a known time zone (e.g. Europe/Paris, America/New_York, UTC).")


slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$",
    "Use 1-50 lower-case letters, digits and hyphens, not starting or ending with a hyphen.",
)

# Slugs that would shadow our own top-level paths if we ever moved tenants there.
RESERVED_SLUGS = {"admin", "api", "new", "settings", "static", "t", "v1", "signup", "login", "logout"}


def default_risk_points_drop() -> int:
    """A new workspace's "points fallen by more than" threshold: AT_RISK_DROP_SHARE as a percentage."""
    return round(100 * settings.AT_RISK_DROP_SHARE)


class Tenant(models.Model):
    """One customer company of ours and its product."""

    name = models.CharField("company name", max_length=100)
    slug = models.SlugField(max_length=50, unique=True, validators=[slug_validator])
    product_name = models.CharField(max_length=100)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    # Raw events older than this many whole months are deleted (events.partitions); the daily
    # rollup, scores and insights keep the history. Empty: the platform's EVENTS_RETENTION_MONTHS.
    events_retention_months = models.PositiveSmallIntegerField(
        "keep raw events (months)", null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Raw events older than this many months are deleted (scores and daily counts are kept). "
        "Empty: the platform default.",
    )  # fmt: skip
    created_at = models.DateTimeField(default=timezone.now)
    # What "at risk" means in this workspace (insights/queries/risk.py, docs/insights.md).
    risk_days = models.PositiveSmallIntegerField(
        "compare with N days earlier", default=14, validators=[MinValueValidator(1), MaxValueValidator(90)],
        help_text="Points and tiers today are compared with this many days earlier.",
    )
    risk_points_drop = models.PositiveSmallIntegerField(
        "points fallen by more than (%)", default=default_risk_points_drop, validators=[MaxValueValidator(100)],
        help_text="0 turns this reason off.",
    )
    risk_tier_drop = models.BooleanField("a tier drop is a risk", default=True)
    risk_silent_days = models.PositiveSmallIntegerField(
        "a seat is silent after (days)", default=7, validators=[MinValueValidator(1), MaxValueValidator(60)],
        help_text="Days without any activity after which a seat that was active counts as silent.",
    )
    risk_silent_share = models.PositiveSmallIntegerField(
        "silent seats from (% of active seats)", default=25, validators=[MaxValueValidator(100)],
        help_text="0 turns this reason off.",
    )
    risk_gap_factor = models.FloatField(
        "last seen beyond the usual gap (times)", default=3.0, validators=[MinValueValidator(0), MaxValueValidator(30)],
        help_text="At risk when the days since last seen exceed this many times the subject's own usual gap "
        "between active days (and at least 3 days). 0 turns this reason off.",
    )
    # Traits that set a customer account's (or end user's) owner and renewal date when they arrive.
    owner_trait = models.CharField(
        max_length=100, blank=True, help_text="A trait holding the owner's email, e.g. csm_email; matched to a member."
    )
    renewal_trait = models.CharField(
        max_length=100, blank=True, help_text="A trait holding the renewal date (YYYY-MM-DD), e.g. renewal_date."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        if self.slug in RESERVED_SLUGS:
            raise ValidationError({"slug": f"“{self.slug}” is reserved; choose another."})

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    def today(self):
        """The current date in the tenant's time zone: a "day" is a tenant day."""
        return timezone.now().astimezone(self.tzinfo).date()


class TenantScopeError(RuntimeError):
    """Raised when tenant-owned rows are asked for without a tenant."""


# Set while a block runs every query of tenant-owned rows unscoped (`dangerously_unscoped`).
_unscoped_block: ContextVar[str | None] = ContextVar("unscoped_block", default=None)

_UNSCOPED = "unscoped"
_OUTER = "outer"  # filter(tenant=OuterRef(...)): a subquery correlated to the outer row's tenant


@contextmanager
def dangerously_unscoped(reason: str):
    """Let every query of tenant-owned rows in this block run without a tenant.

    For code that is Django's, not ours, and reads rows through `_default_manager`
    with no way to pass a scope: the platform admin site (its widgets, filters,
    inlines and delete pages) and Django's own unique checks. Our code says
    `Model.objects.unscoped()` on the one query instead. A context variable, so it
    never reaches another thread or a later request.
    """
    token = _unscoped_block.set(reason)
    try:
        yield
    finally:
        _unscoped_block.reset(token)


def _tenant_id_of(value) -> int | None:
    """The tenant id a `tenant=` / `tenant_id=` filter value names, or None (not a scope)."""
    if isinstance(value, Tenant):
        return value.pk
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


class TenantQuerySet(models.QuerySet):
    """A queryset of tenant-owned rows that refuses to run until it is scoped (fail closed).

    Scoped means one of:
    - `for_tenant(tenant)`, the usual way;
    - a top-level `filter(tenant=…)` / `filter(tenant_id=…)` (or `get(...)`) with a
      saved tenant or a tenant id: the same predicate `for_tenant` writes. Inside a
      `Q(...)` it does not count (an OR could widen it);
    - a related manager (`tenant.enduser_set`, `model.weights`, a survey's
      `activities`): the rows of one parent row;
    - `unscoped()`: the explicit, greppable bypass for the few legitimate cases.

    Anything else (`Model.objects.filter(...)`, `.all()`, `.get()`, `.count()`,
    iteration, `.update()`, `.delete()`, a subquery) raises `TenantScopeError`
    when it would reach the database, never before: building a queryset is free.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # None: not scoped yet; a tenant id; or _UNSCOPED.
        self._tenant_scope = None

    def _clone(self):
        clone = super()._clone()
        clone._tenant_scope = self._tenant_scope
        return clone

    def for_tenant(self, tenant: "Tenant | int"):
        """The rows of one tenant: a saved `Tenant`, or a tenant id (`row.tenant_id` of a row in hand)."""
        tenant_id = _tenant_id_of(tenant)
        if tenant_id is None:
            raise TenantScopeError(f"{self.model.__name__} rows must be read through a tenant.")
        clone = self.filter(tenant_id=tenant_id)
        clone._tenant_scope = tenant_id
        return clone

    def unscoped(self):
        """Every tenant's rows. Only for code that has no tenant yet or spans tenants on purpose.

        The legitimate cases: a key or token looked up before its tenant is known,
        a task given a row id, the platform admin site, cross-tenant management
        commands and sweeps. Grep for `unscoped()` to review them all.
        """
        clone = self._chain()
        clone._tenant_scope = _UNSCOPED
        return clone

    def none(self):
        clone = super().none()
        clone._tenant_scope = _UNSCOPED  # no row at all: nothing to scope
        return clone

    def _filter_or_exclude(self, negate, args, kwargs):
        clone = super()._filter_or_exclude(negate, args, kwargs)
        if not negate and clone._tenant_scope is None:
            for key in ("tenant", "tenant_id", "tenant__pk", "tenant__id"):
                if key not in kwargs:
                    continue
                if isinstance(kwargs[key], OuterRef):
                    clone._tenant_scope = _OUTER
                elif (tenant_id := _tenant_id_of(kwargs[key])) is not None:
                    clone._tenant_scope = tenant_id
                break
        return clone

    def _check_scope(self) -> None:
        if self._tenant_scope is None and _unscoped_block.get() is None:
            raise TenantScopeError(
                f"{self.model.__name__} is tenant-owned: this query has no tenant. Use "
                f"{self.model.__name__}.objects.for_tenant(tenant)... (or filter(tenant=tenant)); "
                f"a query that must span tenants says so with .unscoped()."
            )

    def __repr__(self):
        # The shell, a debugger and pytest print querysets: an unscoped one says so instead of raising.
        if self._result_cache is None and self._tenant_scope is None and _unscoped_block.get() is None:
            return f"<{type(self).__name__} {self.model.__name__}: no tenant, refused>"
        return super().__repr__()

    # Every way a queryset reaches the database goes through one of these.
    def _fetch_all(self):
        if self._result_cache is None:
            self._check_scope()
        super()._fetch_all()

    def iterator(self, chunk_size=None):
        self._check_scope()
        return super().iterator(chunk_size)

    def count(self):
        if self._result_cache is None:
            self._check_scope()
        return super().count()

    def exists(self):
        if self._result_cache is None:
            self._check_scope()
        return super().exists()

    def contains(self, obj):
        if self._result_cache is None:
            self._check_scope()
        return super().contains(obj)

    def aggregate(self, *args, **kwargs):
        self._check_scope()
        return super().aggregate(*args, **kwargs)

    def update(self, **kwargs):
        self._check_scope()
        return super().update(**kwargs)

    update.alters_data = True

    def _update(self, values):
        self._check_scope()
        return super()._update(values)

    def delete(self):
        self._check_scope()
        return super().delete()

    delete.alters_data = True

    def _raw_delete(self, using):
        self._check_scope()
        return super()._raw_delete(using)

    def explain(self, *, format=None, **options):
        self._check_scope()
        return super().explain(format=format, **options)

    def raw(self, raw_query, params=(), translations=None, using=None):
        self._check_scope()
        return super().raw(raw_query, params, translations, using)

    def resolve_expression(self, *args, **kwargs):
        # Used as a subquery (`id__in=Event.objects…`): it must be scoped too.
        self._check_scope()
        return super().resolve_expression(*args, **kwargs)


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):
    def get_queryset(self):
        queryset = super().get_queryset()
        # A related manager (`tenant.enduser_set`, `scoring_model.weights`) subclasses this
        # class and filters by its parent row: its rows are the parent's, so it is scoped.
        instance = getattr(self, "instance", None)
        if instance is not None:
            queryset._tenant_scope = instance.pk if isinstance(instance, Tenant) else getattr(
                instance, "tenant_id", _UNSCOPED
            )
        return queryset


class TenantOwned(models.Model):
    """Base for every row that belongs to a tenant.

    `objects` (the default manager) refuses a query without a tenant
    (`TenantQuerySet`). Django's base manager (`_base_manager`: cascade deletes,
    `save()`'s UPDATE, `refresh_from_db`, a forward foreign key like
    `weight.model`) stays Django's plain `Manager`: it only ever follows a row
    already in hand.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)

    objects = TenantManager()

    class Meta:
        abstract = True

    def validate_unique(self, exclude=None):
        # Uniqueness is global (a token hash, a public id), so Django's check looks at
        # every tenant's rows; it learns only whether a clash exists. With RLS it sees
        # the current tenant's rows only, and the database constraint catches the rest.
        with dangerously_unscoped("Django's unique check"):
            super().validate_unique(exclude)

    def validate_constraints(self, exclude=None):
        with dangerously_unscoped("Django's unique check"):
            super().validate_constraints(exclude)


# --- Members --------------------------------------------------------------------


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    EDITOR = "editor", "Editor"
    ADMIN = "admin", "Admin"
    OWNER = "owner", "Owner"


# Each role can do everything of the roles before it.
ROLE_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2, Role.OWNER: 3}


def role_at_least(role: str, minimum: str) -> bool:
    return ROLE_RANK[Role(role)] >= ROLE_RANK[Role(minimum)]


class Department(models.TextChoices):
    PRODUCT = "product", "Product"
    ENGINEERING = "engineering", "Engineering"
    DESIGN = "design", "Design"
    MARKETING = "marketing", "Marketing"
    SALES = "sales", "Sales"
    CUSTOMER_SUCCESS = "customer_success", "Customer success"
    SUPPORT = "support", "Support"
    FINANCE = "finance", "Finance"
    LEADERSHIP = "leadership", "Leadership"
    OTHER = "other", "Other"


class Membership(TenantOwned):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    department = models.CharField(max_length=20, choices=Department.choices, default=Department.OTHER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_user_per_tenant")]
        ordering = ["user__email"]

    def __str__(self):
        return f"{self.user} in {self.tenant} ({self.role})"

    def can(self, minimum_role: str) -> bool:
        return role_at_least(self.role, minimum_role)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def default_invitation_expiry():
    return timezone.now() + settings.INVITATION_TTL


class Invitation(TenantOwned):
    """An invitation to join a tenant. Only a hash of the emailed token is kept."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    department = models.CharField(max_length=20, choices=Department.choices, default=Department.OTHER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(default=default_invitation_expiry)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Invitation of {self.email} to {self.tenant}"

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(32)

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"


# --- API keys -------------------------------------------------------------------


class ApiKeyKind(models.TextChoices):
    WRITE = "write", "Write key (ingestion only; safe in a browser)"
    READ = "read", "Read key (secret; read API)"


KEY_PREFIXES = {ApiKeyKind.WRITE: "wk_", ApiKeyKind.READ: "rk_"}
_LOOKUP_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


class ApiKey(TenantOwned):
    """A key looked up by its short public prefix and checked against a SHA-256 hash.

    Format: `wk_<12 lookup chars>_<43 secret chars>` (256 random bits in the
    secret). SHA-256 suffices for a high-entropy secret and is cheap enough for
    the ingestion hot path; the plaintext is shown once and never stored.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=5, choices=ApiKeyKind.choices)
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=20, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def generate(cls, kind: str) -> tuple[str, str, str]:
        """Return (plaintext key, lookup prefix, hash)."""
        lookup = "".join(secrets.choice(_LOOKUP_ALPHABET) for _ in range(12))
        prefix = f"{KEY_PREFIXES[ApiKeyKind(kind)]}{lookup}"
        plaintext = f"{prefix}_{secrets.token_urlsafe(32)}"
        return plaintext, prefix, hash_token(plaintext)

    @staticmethod
    def split_prefix(plaintext: str) -> str | None:
        # The secret may itself contain "_", so split by position, not separator.
        if len(plaintext) > 16 and plaintext[15] == "_" and plaintext[:3] in KEY_PREFIXES.values():
            return plaintext[:15]
        return None

    def matches(self, plaintext: str) -> bool:
        return hmac.compare_digest(self.secret_hash, hash_token(plaintext))

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    # Writing last_used_at on every ingestion request would turn reads into
    # writes on the hot path; a minute of precision is enough for the page.
    LAST_USED_PRECISION = timedelta(minutes=1)
