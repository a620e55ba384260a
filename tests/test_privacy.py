import pytest

from chatrec.privacy import luhn_ok, mask_pii


@pytest.mark.parametrize("text,placeholder", [
    ("mail me at jane.doe+shop@example.co.uk please", "<EMAIL>"),
    ("card 4111 1111 1111 1111 exp 12/27", "<CARD_NUMBER>"),
    ("card 4111-1111-1111-1111", "<CARD_NUMBER>"),
    ("card ４１１１１１１１１１１１１１１１", "<CARD_NUMBER>"),  # full-width digits
    ("call me on +1 (415) 555-0134", "<PHONE>"),
    ("my number is 020 7946 0958", "<PHONE>"),
    ("ship to 221 Baker Street London", "<ADDRESS>"),
    ("IBAN DE89 3704 0044 0532 0130 00", "<IBAN>"),
    ("from 192.168.10.24", "<IP_ADDRESS>"),
])
def test_masks_personal_data(text, placeholder):
    assert placeholder in mask_pii(text)


@pytest.mark.parametrize("text", [
    "order #VW-88213 has not arrived",
    "I bought it in 2024 for $129.99",
    "the 4111 1111 1111 1112 number fails Luhn",   # not a valid card
    "I need 3 cables of 2 m",
    "is the 65W charger in stock",
    "Galaxy S24 256GB",
])
def test_leaves_non_pii_alone(text):
    assert mask_pii(text) == text


def test_luhn():
    assert luhn_ok("4111111111111111")
    assert not luhn_ok("4111111111111112")
