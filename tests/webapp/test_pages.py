"""Visitor pages: home, result states, catalog and language choice."""
import pytest

from testsupport.factories import finished_recognition

TOP5 = [["Vinh_Ha_Long", 0.88], ["Ho_Hoan_Kiem", 0.07], ["Trang_An", 0.03]]


def text(resp) -> str:
    return resp.get_data(as_text=True)


def test_home_has_the_upload_form(client):
    page = text(client.get("/", headers={"Accept-Language": "en"}))
    assert 'enctype="multipart/form-data"' in page
    assert 'accept="image/*"' in page
    assert 'name="images"' in page and "multiple" in page
    assert 'data-max-bytes="20971520"' in page  # client-side size check


def test_language_follows_accept_language_and_the_switch(client):
    assert "Which landmark is this?" in text(client.get("/", headers={"Accept-Language": "en-US,en;q=0.9"}))
    assert "Đây là địa danh nào?" in text(client.get("/", headers={"Accept-Language": "vi-VN,vi;q=0.9"}))
    resp = client.get("/lang/vi?next=/landmarks", headers={"Accept-Language": "en"})
    assert resp.status_code == 302 and resp.headers["Location"] == "/landmarks"
    assert 'lang="vi"' in text(client.get("/", headers={"Accept-Language": "en"}))  # the switch wins
    assert client.get("/lang/fr").status_code == 404
    assert client.get("/lang/en?next=//evil.example").headers["Location"] == "/"


@pytest.mark.parametrize("target", ["/%09/evil.example", "/%5Cevil.example", "/%0D%0ASet-Cookie:x=1", "https://evil.example"])
def test_the_language_switch_never_leaves_the_site(client, target):
    resp = client.get(f"/lang/en?next={target}")
    assert resp.status_code == 302 and resp.headers["Location"] == "/"  # a tab, backslash or CR/LF: home


def test_result_page_shows_the_landmark(app, client, catalog):
    with app.app_context():
        rec_id = finished_recognition("Vinh_Ha_Long", TOP5)
    page = text(client.get(f"/r/{rec_id}", headers={"Accept-Language": "en"}))
    assert "Ha Long Bay" in page and "Vịnh Hạ Long" in page  # both names
    assert "88%" in page
    assert "Quảng Ninh" in page and "20.9101, 107.1839" in page
    assert "A bay of limestone islands." in page
    assert 'href="/landmarks/vinh-ha-long"' in page
    assert "Hoan Kiem Lake" in page and "7.0%" in page  # alternatives
    assert "vn-map" in page
    assert "http-equiv" not in page and "result.js" not in page  # finished: no more polling


def test_result_page_in_vietnamese(app, client, catalog):
    with app.app_context():
        rec_id = finished_recognition("Vinh_Ha_Long", TOP5)
    page = text(client.get(f"/r/{rec_id}", headers={"Accept-Language": "vi"}))
    assert "Độ tin cậy" in page and "Một vịnh" not in page
    assert "Vịnh với hàng nghìn đảo đá vôi." in page


def test_result_page_not_a_known_landmark(app, client, catalog):
    with app.app_context():
        rec_id = finished_recognition(None, [["Ho_Hoan_Kiem", 0.3], ["Vinh_Ha_Long", 0.2]])
    page = text(client.get(f"/r/{rec_id}", headers={"Accept-Language": "en"}))
    assert "Not a landmark we know" in page
    assert "Closest guesses" in page and "Hoan Kiem Lake" in page and "Ha Long Bay" in page


def verdict(page: str) -> str:
    return page[page.index('<div class="verdict">'):page.index('id="feedback"')]


def test_a_sure_answer_has_the_big_title_and_no_places(app, client, catalog):
    with app.app_context():
        rec_id = finished_recognition("Vinh_Ha_Long", TOP5, tier="sure", suggestions=["Vinh_Ha_Long"], places=[])
    page = text(client.get(f"/r/{rec_id}", headers={"Accept-Language": "en"}))
    assert '<h1 class="landmark-name" id="landmark-name">Ha Long Bay</h1>' in page and "This is" in page
    assert "It might be" not in page and "Places that look like this" not in page and "vn-map" in page


def test_a_maybe_answer_says_it_might_be_never_in_the_big_title(app, client, catalog):
    with app.app_context():
        rec_id = finished_recognition("Vinh_Ha_Long", TOP5, tier="maybe", suggestions=["Vinh_Ha_Long", "Ho_Hoan_Kiem"],
                                      places=[["pho-co-hoi-an", 0.7]])
        one_id = finished_recognition("Vinh_Ha_Long", TOP5, tier="maybe", suggestions=["Vinh_Ha_Long"], places=[])
    page = text(client.get(f"/r/{rec_id}", headers={"Accept-Language": "en"}))
    shown = verdict(page)
    assert 'class="landmark-name"' not in page and "vn-map" not in page and "A bay of limestone islands." not in page
    assert ('It might be <a href="/landmarks/vinh-ha-long">Ha Long Bay</a> '
            '(or <a href="/landmarks/ho-hoan-kiem">Hoan Kiem Lake</a>)') in shown
    assert "Is this right?" in page and 'id="feedback-yes"' in page  # corrections go to the review queue
    assert "Places that look like this" in page
    only = verdict(text(client.get(f"/r/{one_id}", headers={"Accept-Language": "en"})))
    assert ('<h1 class="tentative" id="verdict">It might be '
            '<a href="/landmarks/vinh-ha-long">Ha Long Bay</a></h1>') in only
    vi = verdict(text(client.get(f"/r/{rec_id}", headers={"Accept-Language": "vi"})))
    assert "Có thể là" in vi and "Vịnh Hạ Long" in vi


def test_an_unknown_answer_folds_the_closest_guesses_away(app, client, catalog):
    top5 = [["Ho_Hoan_Kiem", 0.12], ["Trang_An", 0.1], ["Vinh_Ha_Long", 0.08]]
    with app.app_context():
        rec_id = finished_recognition(None, top5, tier="unknown", suggestions=[k for k, _ in top5], places=[])
    page = text(client.get(f"/r/{rec_id}", headers={"Accept-Language": "en"}))
    assert "Not a landmark we know" in page and "It might be" not in page
    folded = page[page.index('<details class="closest">'):page.index("</details>")]
    assert "<summary>Closest guesses</summary>" in folded and " open" not in folded.split(">")[0]
    assert "Hoan Kiem Lake" in folded and "12.0%" in folded and "Trang An" in folded and "Ha Long Bay" in folded
    assert "Places that look like this" not in page and "Other possibilities" not in page


def test_places_that_look_like_this_are_cards_with_a_photo_or_a_placeholder(app, client, catalog):
    import io

    from werkzeug.datastructures import FileStorage

    from testsupport.factories import jpeg_bytes
    from webapp.extensions import db
    from webapp.models import Landmark
    from webapp.references import add_reference_photos

    with app.app_context():
        hoi_an = db.session.scalars(db.select(Landmark).filter_by(slug="pho-co-hoi-an")).one()
        photo_id = add_reference_photos(hoi_an, [FileStorage(io.BytesIO(jpeg_bytes()), filename="p.jpg")], None)[0].id
        places = [["pho-co-hoi-an", 0.8], ["Ho_Hoan_Kiem", 0.7], ["Vinh_Ha_Long", 0.6]]
        rec_id = finished_recognition(None, TOP5, tier="unknown", suggestions=["Vinh_Ha_Long"], places=places)
    page = text(client.get(f"/r/{rec_id}", headers={"Accept-Language": "en"}))
    cards = page[page.index('<section class="places"'):].split("</section>")[0]
    assert cards.count('<li class="place-card">') == 3
    slugs = ("pho-co-hoi-an", "ho-hoan-kiem", "vinh-ha-long")
    assert all(f'href="/landmarks/{slug}"' in cards for slug in slugs)
    assert cards.index("Hoi An Ancient Town") < cards.index("Hoan Kiem Lake") < cards.index("Ha Long Bay")
    assert f'src="/landmark-photos/{photo_id}"' in cards and cards.count('class="no-photo"') == 2
    assert "Quảng Nam" in cards and "Hà Nội" in cards
    assert "Những nơi trông giống thế này" in text(client.get(f"/r/{rec_id}", headers={"Accept-Language": "vi"}))


def test_result_page_failed(app, client):
    with app.app_context():
        rec_id = finished_recognition(None, [], status="failed", error="the image data is damaged")
    page = text(client.get(f"/r/{rec_id}", headers={"Accept-Language": "en"}))
    assert "We could not read this photo" in page and "the image data is damaged" in page


def test_unknown_result_is_a_404_page(client):
    resp = client.get("/r/nope", headers={"Accept-Language": "en"})
    assert resp.status_code == 404 and "Page not found" in text(resp)


def test_catalog_search_ignores_accents_and_case(client, catalog):
    page = text(client.get("/landmarks?q=ha+long", headers={"Accept-Language": "en"}))
    assert "Ha Long Bay" in page and "Hoan Kiem Lake" not in page
    page = text(client.get("/landmarks?q=HÀ NỘI", headers={"Accept-Language": "en"}))
    assert "Hoan Kiem Lake" in page and "Ha Long Bay" not in page
    page = text(client.get("/landmarks?q=zzz", headers={"Accept-Language": "en"}))
    assert "No landmark matches" in page
    everything = text(client.get("/landmarks", headers={"Accept-Language": "en"}))
    assert all(entry["name_en"] in everything for entry in catalog)
    assert everything.count('class="vn-map__pin"') == len(catalog)  # all pins on one map


def test_landmark_page(client, catalog):
    page = text(client.get("/landmarks/pho-co-hoi-an", headers={"Accept-Language": "vi"}))
    assert "Phố cổ Hội An" in page and "Hoi An Ancient Town" in page and "Một thương cảng cổ." in page
    assert client.get("/landmarks/nowhere").status_code == 404
