from django import template

register = template.Library()


@register.filter
def account_link(digest, item):
    """The absolute address of an account's page, for an email."""
    return digest.account_url(item)
