"""Requisites and links found in HTML: what a page needs to be shown as it was."""

from archive.capture.links import css_links, extract_html, header_requisites, srcset_urls


def test_srcset_urls_may_hold_commas():
    """Image services put sizes in the path (Cloudinary, imgix): splitting a srcset at
    every comma fetched broken URLs and missed the images a news page shows."""
    value = ("https://res.cloudinary.com/n/image/upload/w_300,h_200,c_fill/a.jpg 300w, "
             "https://res.cloudinary.com/n/image/upload/w_600,h_400,c_fill/a.jpg 600w")
    assert srcset_urls(value) == [
        "https://res.cloudinary.com/n/image/upload/w_300,h_200,c_fill/a.jpg",
        "https://res.cloudinary.com/n/image/upload/w_600,h_400,c_fill/a.jpg",
    ]


def test_srcset_candidates_as_the_html_standard_reads_them():
    assert srcset_urls("/a.png 1x,/b.png 2x, /c.png") == ["/a.png", "/b.png", "/c.png"]
    assert srcset_urls("/a.png, /b.png") == ["/a.png", "/b.png"]          # a comma ends a bare URL
    assert srcset_urls(" , /x.png 2x (ignored, here), /y.png") == ["/x.png", "/y.png"]
    assert srcset_urls("") == []


def test_legacy_svg_and_lazy_requisites_are_found():
    html = b"""<html><body background="/bg.gif">
      <table background="/table.gif"><tr><td background="/cell.gif">x</td></tr></table>
      <svg><image xlink:href="/old-svg.png"/><use xlink:href="/sprite.svg#icon"/></svg>
      <img data-srcset="/lazy-1.jpg 1x, /lazy-2.jpg 2x">
      <link rel="preload" as="image" href="/hero.jpg" imagesrcset="/hero-1.jpg 1x, /hero-2.jpg 2x">
      <a href="/next.html">next</a></body></html>"""
    links = extract_html(html, "http://site.test/page.html")
    assert set(links.requisites) == {f"http://site.test/{name}" for name in (
        "bg.gif", "table.gif", "cell.gif", "old-svg.png", "sprite.svg", "lazy-1.jpg",
        "lazy-2.jpg", "hero.jpg", "hero-1.jpg", "hero-2.jpg")}
    assert links.pages == ["http://site.test/next.html"]


def test_css_image_set_strings_are_requisites():
    css = """.hero { background-image: -webkit-image-set("/h1.jpg" 1x, '/h2.jpg' 2x);
                     background: image-set(url("/h3.avif") type("image/avif"), "/h4.jpg" 1x); }"""
    assert sorted(css_links(css, "http://site.test/")) == [
        f"http://site.test/h{n}.{ext}" for n, ext in ((1, "jpg"), (2, "jpg"), (3, "avif"), (4, "jpg"))]


def test_link_header_preloads_are_requisites():
    header = ('</css/site.css>; rel=preload; as=style, <https://cdn.test/f.woff2>; rel="preload"; as=font, '
              '</next-page>; rel=next, </icon.png>; rel="shortcut icon"')
    assert header_requisites("http://site.test/a/page", header) == [
        "http://site.test/css/site.css", "https://cdn.test/f.woff2", "http://site.test/icon.png"]
    assert header_requisites("http://site.test/", None) == []
