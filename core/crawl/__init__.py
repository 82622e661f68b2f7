"""Collect: a polite, robust image crawler (static HTML or JavaScript-rendered pages).

Entry point: `crawl(config, on_progress=..., cancel=..., on_saved=...)`. Heavy libraries
(requests, bs4, PIL, imagehash, selenium) are imported inside functions so importing this
package costs nothing.
"""
from core.crawl.config import CrawlConfig, CrawlReport, SavedPhoto, SkipRecord, parse_seed_lines

__all__ = ["CrawlConfig", "CrawlReport", "SavedPhoto", "SkipRecord", "parse_seed_lines", "crawl", "provenance_for", "candidate_captions"]


def crawl(*args, **kwargs):
    """Run a crawl; see `core.crawl.crawler.crawl`."""
    from core.crawl.crawler import crawl as _crawl

    return _crawl(*args, **kwargs)


def provenance_for(*args, **kwargs):
    """Provenance of a saved photo; see `core.crawl.state.provenance_for`."""
    from core.crawl.state import provenance_for as _provenance_for

    return _provenance_for(*args, **kwargs)


def candidate_captions(*args, **kwargs):
    """Alt text and page title of a saved photo; see `core.crawl.state.candidate_captions`."""
    from core.crawl.state import candidate_captions as _candidate_captions

    return _candidate_captions(*args, **kwargs)
