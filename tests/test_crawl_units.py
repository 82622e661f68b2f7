"""Small pieces of the crawler: HTML extraction, safe names, no-overwrite saves, magic bytes."""
from __future__ import annotations

from core.crawl.extract import extract
from core.crawl.files import file_stem_for, safe_component, save_unique, sniff_image_type
from core.crawl.net import normalize_url
from core.images import sha256_bytes


def test_extract_finds_every_kind_of_image_reference_once():
    page = """<html><head><title> My  page </title><base href="/sub/">
    <meta property="og:image" content="https://cdn.example/og.jpg"></head><body>
    <img src="a.jpg" alt="first"><img src="a.jpg">
    <img src="s.jpg" srcset="s.jpg 1x, s2.jpg 2x">
    <img src="data:image/png;base64,xx" data-src="lazy.jpg">
    <img data-srcset="l1.jpg 300w, l2.jpg 900w">
    <picture><source srcset="p1.avif 1x, p2.avif 2x"><source srcset="p3.webp 640w"><img src="p.jpg" alt="pic"></picture>
    <a href="photo.PNG?size=big" title="linked">x</a><a href="next.html#top">next</a><a href="javascript:void(0)">js</a>
    </body></html>"""
    content = extract(page, "https://site.example/dir/index.html")
    assert content.title == "My page"
    assert [(r.url.rsplit("/", 1)[-1], r.alt) for r in content.images] == [
        ("og.jpg", "My page"), ("p3.webp", "pic"), ("a.jpg", "first"), ("s2.jpg", ""), ("lazy.jpg", ""), ("l2.jpg", ""),
        ("photo.PNG?size=big", "linked")]
    assert content.images[2].url == "https://site.example/sub/a.jpg"
    assert content.links == ["https://site.example/sub/next.html"]


def test_normalize_url():
    assert normalize_url("HTTP://Example.COM:80/a#frag") == "http://example.com/a"
    assert normalize_url("x?y=1", "https://h.example:8443/d/") == "https://h.example:8443/d/x?y=1"
    assert normalize_url("mailto:a@b.c") is None and normalize_url("ftp://h/x") is None
    # Tracking parameters and fragments never make a second URL for the same photo or page.
    assert normalize_url("https://h/p.jpg?utm_source=x&id=3&fbclid=Y&UTM_Medium=z&gclid=1#f") == "https://h/p.jpg?id=3"
    assert normalize_url("https://h/p.jpg?utm_campaign=spring") == "https://h/p.jpg"
    assert normalize_url("https://h/p?utmost=1&a=") == "https://h/p?utmost=1&a="  # only whole parameter names


def test_css_backgrounds_and_meta_refresh():
    from core.crawl.extract import css_background_urls, meta_refresh_target

    css = """.a { background: #fff url("one.jpg") no-repeat, url(two.png); }
    /* .b { background-image: url(commented.jpg) } */ .c{background-image:url( 'three four.webp' )}
    .d { border-image: url(not-a-background.png) 30; } .e { background-color: red }"""
    assert css_background_urls(css) == ["one.jpg", "two.png", "three four.webp"]
    assert meta_refresh_target("0; url=/next.html") == "/next.html"
    assert meta_refresh_target("5;URL='a b.html'") == "a b.html" and meta_refresh_target("30") is None
    page = """<html><head><meta http-equiv="Refresh" content="0;url=moved.html"><base href="https://cdn.example/s/">
    <style>.h{background-image:url(hero.jpg)}</style></head><body>
    <div style="background:url('/bg.jpg')" title="Hero"></div><!-- <div style="background:url(/hidden.jpg)"></div> -->
    </body></html>"""
    content = extract(page, "https://site.example/p.html")
    assert [(r.url, r.alt) for r in content.images] == [("https://cdn.example/bg.jpg", "Hero"), ("https://cdn.example/s/hero.jpg", "")]
    assert content.links == ["https://cdn.example/s/moved.html"]


def test_safe_names_cannot_escape_or_be_empty():
    assert safe_component("../../etc/passwd", "x") == "etc_passwd"
    assert safe_component("living room", "x") == "living room"
    assert safe_component("..", "fallback") == "fallback"
    assert safe_component("CON", "fallback") == "fallback"
    assert file_stem_for("https://h/img/..%2F..%2Fevil.jpg") == "evil"
    assert file_stem_for("https://h/") == "image"
    assert "/" not in file_stem_for("https://h/a%2Fb%5Cc.jpg")


def test_save_unique_never_overwrites_and_reuses_identical_content(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"someone else's photo")
    data = b"\xff\xd8\xff new photo"
    first = save_unique(tmp_path, "a", "jpg", data, sha256_bytes(data))
    assert first.name == "a-1.jpg" and (tmp_path / "a.jpg").read_bytes() == b"someone else's photo"
    again = save_unique(tmp_path, "a", "jpg", data, sha256_bytes(data))  # a rerun after a crash
    assert again == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-1.jpg", "a.jpg"]  # no temp files left


def test_sniff_image_type():
    assert sniff_image_type(b"\xff\xd8\xff\xe0rest") == "jpg"
    assert sniff_image_type(b"\x89PNG\r\n\x1a\nrest") == "png"
    assert sniff_image_type(b"RIFF1234WEBPVP8 ") == "webp"
    assert sniff_image_type(b"<!doctype html>") is None


def test_crawl_delay_prefers_our_own_group_and_keeps_fractions():
    from core.crawl.net import crawl_delay

    robots = ["User-agent: *", "Crawl-delay: 2", "", "User-agent: OtherBot", "User-agent: PhotoLoreBot", "Crawl-delay: 0.5"]
    assert crawl_delay(robots, "PhotoLoreBot/0.1 (+x)") == 0.5
    assert crawl_delay(robots, "SomeoneElse/1.0") == 2.0
    assert crawl_delay(["User-agent: *", "Disallow: /x"], "PhotoLoreBot/0.1") is None
