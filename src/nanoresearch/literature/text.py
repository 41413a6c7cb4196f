"""Text clean-up shared by every source: whitespace, markup left in API fields, identifiers."""

from __future__ import annotations

import html
import re
import unicodedata

# Words too common to name a paper (BibTeX keys) or to rank one (local search queries).
STOPWORDS = frozenset(
    "a an and are as at be by do does for from how in into is it its of on or our over the this that to "
    "toward towards under using via what when which with we".split()
)

# Publishers leave JATS/HTML inline tags in abstracts and titles; real text never has these tag names.
_INLINE_TAGS = re.compile(r"</?(?:jats:)?(?:p|i|b|em|strong|sub|sup|italic|bold|sc|title|sec|br)\b[^<>]*>", re.I)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.I)
_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.(.+)$", re.I)
_ARXIV_ID = re.compile(r"^(?:\d{4}\.\d{4,5}|[a-z][a-z.-]*/\d{7})$", re.I)
_ARXIV_URL = re.compile(r"arxiv\.org/(?:abs|pdf)/([^?#\s]+?)(?:\.pdf)?/?$", re.I)
_VERSION = re.compile(r"v\d+$")


def clean_text(value: str | None) -> str:
    """One line of plain text: entities decoded, inline tags and control characters dropped."""
    if not value:
        return ""
    text = _INLINE_TAGS.sub(" ", html.unescape(value))
    return " ".join(_CONTROL.sub(" ", text).split())


def ascii_fold(text: str) -> str:
    """Lowercase ASCII: accents folded (Léon -> leon), other non-ASCII letters dropped."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def normalise_title(title: str) -> str:
    """What two copies of one title share despite case, punctuation and accents."""
    return " ".join(re.findall(r"[a-z0-9]+", ascii_fold(title)))


def normalise_doi(doi: str | None) -> str | None:
    """A bare lowercase DOI (10.x/y) from a DOI, doi: form or doi.org URL; None when it is not one."""
    if not doi:
        return None
    bare = _DOI_PREFIX.sub("", doi.strip()).lower()
    return bare if bare.startswith("10.") and "/" in bare else None


def normalise_arxiv_id(value: str | None) -> str | None:
    """An arXiv identifier without version (1412.6980, hep-th/9901001) from an id or arXiv URL."""
    if not value:
        return None
    value = value.strip()
    from_url = _ARXIV_URL.search(value)
    candidate = _VERSION.sub("", from_url.group(1) if from_url else value.removeprefix("arXiv:"))
    return candidate if _ARXIV_ID.match(candidate) else None


def arxiv_id_from_doi(doi: str | None) -> str | None:
    """arXiv's own DOIs (10.48550/arXiv.1412.6980) carry the arXiv id."""
    match = _ARXIV_DOI.match(doi or "")
    return normalise_arxiv_id(match.group(1)) if match else None
