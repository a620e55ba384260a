import json

import pytest

from chatrec.turn.pii import find_pii, luhn_ok, mask_pii
from tests_support import KB_DIR

# (text, placeholder, the personal data that must be gone)
POSITIVES = [
    # e-mail
    ("mail me at jane.doe+shop@example.co.uk please", "<EMAIL>", "jane.doe"),
    ("MAIL: JOHN_SMITH@EXAMPLE.COM", "<EMAIL>", "JOHN_SMITH"),
    ("write to josé.álvarez@correo.es", "<EMAIL>", "álvarez"),
    ("obfuscated jane [at] example [dot] com", "<EMAIL>", "jane"),
    ("ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ is my mail", "<EMAIL>", "ｊａｎｅ"),  # full-width
    # payment card (Luhn-checked)
    ("card 4111 1111 1111 1111 exp 12/27", "<CARD_NUMBER>", "4111 1111"),
    ("card 4111-1111-1111-1111", "<CARD_NUMBER>", "4111-1111"),
    ("card 4111111111111111", "<CARD_NUMBER>", "4111111111111111"),
    ("card ４１１１１１１１１１１１１１１１", "<CARD_NUMBER>", "４１１１"),  # full-width digits
    ("card ٤١١١١١١١١١١١١١١١", "<CARD_NUMBER>", "٤١١١"),  # Arabic-Indic digits
    ("card 4111\u200b1111\u200b1111\u200b1111", "<CARD_NUMBER>", "1111"),  # zero-width spaces
    ("card 4111  1111   1111 1111", "<CARD_NUMBER>", "1111"),  # odd spacing
    ("card 4111 \u2013 1111 \u2013 1111 \u2013 1111", "<CARD_NUMBER>", "1111"),  # en dashes
    ("amex 3782 822463 10005 thanks", "<CARD_NUMBER>", "822463"),
    ("my card for the order is 5555 5555 5555 4444 12/27", "<CARD_NUMBER>", "5555"),
    ("cvv 123 please", "<CARD_SECURITY_CODE>", "123"),
    # phone
    ("call me on +1 (415) 555-0134", "<PHONE>", "555-0134"),
    ("my number is 020 7946 0958", "<PHONE>", "7946"),
    ("reach me at 415.555.0134 after 6", "<PHONE>", "555.0134"),
    ("(415) 555 0134 is my cell", "<PHONE>", "555 0134"),
    ("+44 (0)20 7946 0958", "<PHONE>", "7946"),
    ("+33 6 12 34 56 78", "<PHONE>", "12 34 56"),
    ("call 0044 20 7946 0958", "<PHONE>", "7946"),
    ("phone: 5550134", "<PHONE>", "5550134"),
    ("my number is 4155550134", "<PHONE>", "4155550134"),
    ("text me 07700900123", "<PHONE>", "07700900123"),
    ("call 0 2 0 7 9 4 6 0 9 5 8", "<PHONE>", "7 9 4 6"),
    ("call ０２０ ７９４６ ０９５８", "<PHONE>", "７９４６"),  # full-width
    ("order 123, and my phone number is 415 555 0134", "<PHONE>", "555 0134"),
    # IBAN
    ("IBAN DE89 3704 0044 0532 0130 00", "<IBAN>", "3704"),
    ("iban: GB82WEST12345698765432", "<IBAN>", "GB82WEST"),
    ("pay to fr14 2004 1010 0505 0001 3m02 606", "<IBAN>", "2004"),
    # IP
    ("from 192.168.10.24", "<IP_ADDRESS>", "192.168"),
    ("my router is at 10.0.0.1.", "<IP_ADDRESS>", "10.0.0.1"),
    ("ip fe80::1ff:fe23:4567:890a ok", "<IP_ADDRESS>", "fe80"),
    ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "<IP_ADDRESS>", "0db8"),
    # postal address
    ("ship to 221 Baker Street London", "<ADDRESS>", "Baker"),
    ("ship to 221b baker street, london", "<ADDRESS>", "baker"),
    ("Flat 2, 10 Downing St, London", "<ADDRESS>", "Downing"),
    ("1600 Pennsylvania Ave NW, Washington", "<ADDRESS>", "Pennsylvania"),
    ("deliver to 42 Oak Lane apt 5B", "<ADDRESS>", "5B"),
    ("Hauptstraße 5, Berlin", "<ADDRESS>", "Hauptstraße"),
    ("PO Box 1234", "<ADDRESS>", "1234"),
    ("ship to 221 Baker Street, London NW1 6XE", "<POSTCODE>", "6XE"),
    ("my postcode is SW1A 1AA", "<POSTCODE>", "SW1A"),
    ("123 Main St, Springfield, IL 62704-1234", "<POSTCODE>", "62704"),
    ("the zip is 94103", "<POSTCODE>", "94103"),
    ("Springfield, IL 62704", "<POSTCODE>", "62704"),
    # national ids
    ("my SSN is 123-45-6789", "<NATIONAL_ID>", "6789"),
    ("social security number 123 45 6789", "<NATIONAL_ID>", "6789"),
    ("NI number AB 12 34 56 C", "<NATIONAL_ID>", "12 34 56"),
    # person names after cues
    ("my name is John Smith and my order is late", "<NAME>", "Smith"),
    ("My name's Ann", "<NAME>", "Ann"),
    ("my name is josé álvarez", "<NAME>", "álvarez"),
    ("my full name: Zoë O'Neil", "<NAME>", "O'Neil"),
    ("Name: Anne-Marie van der Berg", "<NAME>", "Anne-Marie"),
    ("Hi, this is Priya.", "<NAME>", "Priya"),
    ("hello I'm Tom and I need help", "<NAME>", "Tom"),
    ("I'm Sarah, my parcel is late", "<NAME>", "Sarah"),
    ("this is John speaking", "<NAME>", "John"),
    ("you can call me Bob.", "<NAME>", "Bob"),
    ("Kind regards,\nAnn Lee", "<NAME>", "Lee"),
    ("Thanks, John", "<NAME>", "John"),
    ("Mr. Smith called yesterday", "<NAME>", "Smith"),
    ("ｍｙ ｎａｍｅ ｉｓ Ｊｏｈｎ", "<NAME>", "Ｊｏｈｎ"),
    # dates of birth
    ("born on 12/03/1985", "<DATE_OF_BIRTH>", "1985"),
    ("DOB: 1985-03-12", "<DATE_OF_BIRTH>", "1985"),
    ("d.o.b. 12.03.1985", "<DATE_OF_BIRTH>", "1985"),
    ("I was born 3rd of March 1985", "<DATE_OF_BIRTH>", "1985"),
    ("date of birth is March 3, 1985", "<DATE_OF_BIRTH>", "1985"),
    ("born in 1990", "<DATE_OF_BIRTH>", "1990"),
    ("my birthday is 4 July", "<DATE_OF_BIRTH>", "4 July"),
]


@pytest.mark.parametrize("text,placeholder,secret", POSITIVES)
def test_masks_personal_data(text, placeholder, secret):
    masked = mask_pii(text)
    assert placeholder in masked, masked
    assert secret not in masked, masked


NEGATIVES = [
    # order ids, SKUs, model numbers
    "order #VW-88213 has not arrived",
    "where is #VW-48213?",
    "order # 1234567890",
    "SKU VW-1001 and VW-1002 please",
    "Sony WH-1000XM5 or the WH-1000XM4",
    "Galaxy S24 256GB",
    "Logitech MX Master 3S Wireless Mouse Graphite",
    "Logitech MX Keys S Wireless Keyboard Graphite",
    "Apple MacBook Air 13-inch (M3) 8GB 256GB Midnight ($1,099.00)",
    "Anker 735 Charger (Nano II 65W) 3-Port GaN ($49.99)",
    "my parcel for order no 481906672801 is late",
    "please help, I need to call off purchase 00009182736?",
    "I would like order 615538209947 cancelled",
    "order number is 12345678",
    "tracking number 1Z999AA10123456784",
    "EAN 5901234123457",
    "ISBN 978-3-16-148410-0",
    "order 4111111111111112",  # a 16-digit order number that fails Luhn (a Visa-shaped valid one is a card)
    # prices, quantities, years
    "I bought it in 2024 for $129.99",
    "prices from $1,299.00 to 1.299,00 €",
    "I need 3 cables of 2 m",
    "I want 10000 units",
    "is the 65W charger in stock",
    "4K 120Hz 3840 x 2160 and 1920x1080",
    "from 2019-2024 it worked",
    "models from 2019 - 2024",
    # movie titles with years (ReDial messages)
    "I liked Dreamfold (2010) and Looper (2012)",
    "The Karate Kid 2010 (2010) or the 1984 one",
    "Moneyball 2012 (2009)",
    # numbers that fail a checksum
    "the 4111 1111 1111 1112 number fails Luhn",
    "DE00 1234 5678 9012 3456 78 is not an IBAN",
    # dates and times without a birth cue
    "delivered on 12/03/2025",
    "delivered on 12.03.2025 at 10:30",
    "2026-03-14T10:22:00Z",
    "between 10:00 and 18:00",
    "it arrived March 3, 1985 style",
    # version strings vs IPs
    "firmware 1.2.3",
    "version 1.2.3.4",
    "update to v2.0.1.5 fixed it",
    "iOS 17.4.1 broke bluetooth",
    "Chrome 120.0.6099.109",
    # words after name cues that are not names
    "This is Ridiculous!",
    "I'm Looking for a case",
    "call me tomorrow",
    "call me Monday.",
    "the best Sony headphones",
    "this is Sony's best",
    "thanks!",
    "Thanks Bye!",
    "thank you Goodbye",
    "Cheers Mate",
    "I live on Park Lane",
    "the 2 for the way home",
    "buy 2 cables on Main Street",
    "a 27-inch monitor covering 100% sRGB",
    # postcodes and ZIPs without address words
    "the WH1 2AB code",
    "it costs 94103 points",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_leaves_non_pii_alone(text):
    assert mask_pii(text) == text


def test_luhn():
    assert luhn_ok("4111111111111111")
    assert not luhn_ok("4111111111111112")


def test_card_with_trailing_expiry_and_group_window():
    # the digits run on into the expiry: the card is found among the groups
    assert mask_pii("4111 1111 1111 1111 1227") == "<CARD_NUMBER> 1227"


def test_several_kinds_in_one_message():
    text = (
        "Hi, this is Ann Lee. Card 4111 1111 1111 1111, mail ann@example.com, "
        "call +44 20 7946 0958, ship to 10 Downing Street, London SW1A 2AA. Order #VW-48213."
    )
    masked = mask_pii(text)
    for ph in ("<NAME>", "<CARD_NUMBER>", "<EMAIL>", "<PHONE>", "<ADDRESS>", "<POSTCODE>"):
        assert ph in masked
    assert "#VW-48213" in masked
    assert masked.startswith("Hi, this is <NAME>. Card ")


def test_only_the_personal_data_changes():
    # full-width text and odd spaces outside the PII are kept as given
    text = "ご注文 ＃ＶＷ－４８２１３\u00a0について: mail ａｎｎ@example.com"
    masked = mask_pii(text)
    assert masked == "ご注文 ＃ＶＷ－４８２１３\u00a0について: mail <EMAIL>"


def test_spans_point_into_the_original_text():
    text = "card ４１１１ １１１１ １１１１ １１１１ ok"
    (span,) = find_pii(text)
    assert span.label == "CARD_NUMBER"
    assert text[span.start : span.end] == span.text == "４１１１ １１１１ １１１１ １１１１"


def test_idempotent_and_empty():
    text = "my name is John Smith, call 415-555-0134, jane@example.com, 221 Baker Street"
    once = mask_pii(text)
    assert mask_pii(once) == once
    assert mask_pii("") == ""
    assert find_pii("") == []


def test_order_ids_survive_for_the_pipeline():
    # pipeline._ORDER_ID reads the masked message: order numbers must stay intact
    assert mask_pii("where is my order #12345678 and #VW-48213") == "where is my order #12345678 and #VW-48213"


def test_demo_catalogue_and_customer_messages_are_untouched():
    changed = []
    for line in (KB_DIR / "catalogue.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        for text in [item["title"], item["description"], *item["aliases"]]:
            if mask_pii(text) != text:
                changed.append(text)
    for line in (KB_DIR / "transcripts.jsonl").read_text(encoding="utf-8").splitlines():
        for turn in json.loads(line)["turns"]:
            if turn["role"] == "user" and mask_pii(turn["text"]) != turn["text"]:
                changed.append(turn["text"])
    assert changed == []


def test_long_input_is_fast():
    import time

    text = "Hello, I need help with order #VW-48213 for the Sony WH-1000XM5 ($349.99). " * 200 + "call 415 555 0134"
    t0 = time.perf_counter()
    masked = mask_pii(text)
    assert time.perf_counter() - t0 < 2.0
    assert masked.endswith("call <PHONE>")


def test_two_cards_in_a_row():
    assert mask_pii("4111 1111 1111 1111 5555 5555 5555 4444") == "<CARD_NUMBER> <CARD_NUMBER>"


@pytest.mark.parametrize(
    "text",
    [
        " ".join(["1"] * 5000),
        " ".join(["12"] * 5000),
        "4" * 20000,
        "1 Main " * 3000,
        "my name is " * 3000,
        "x@" * 10000,
        "+1 (" * 3000,
        "::" * 5000,
        "(1)" * 5000,
    ],
)
def test_adversarial_long_inputs_stay_fast(text):
    import time

    t0 = time.perf_counter()
    mask_pii(text)
    assert time.perf_counter() - t0 < 1.0
