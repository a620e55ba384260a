"""The QA-log importer: presets, column mappings, bad rows, encodings, masking, output.

Every fixture is a tiny synthetic file written into tmp_path.
"""

import csv
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from chatrec.cli.importers import register
from chatrec.importers.qa_logs import (
    ColumnMapping,
    ImportFailed,
    import_file,
    medoid,
    slot_default,
    slot_name,
)
from chatrec.kb import load_kb

BITEXT_HEADER = [
    "context",
    "role",
    "instruction",
    "intent",
    "entity_type",
    "entity_value",
    "start_offset",
    "end_offset",
    "category",
    "tags",
    "response",
]
TRACK = (
    "To check where your parcel is, open {{Order History}} on {{Website Name}}, pick order "
    "{{Order Number}} and press {{Track Order}}. Call {{Customer Support Phone Number}} if it is stuck."
)
TRACK_NEAR = (
    "To check where your parcel is, open {{Order History}} on {{Website Name}}, pick order "
    "{{Order Number}} and press {{Track Order}}. Call {{Customer Support Phone Number}} if it is stuck!"
)
TRACK_OTHER = "Sure! Tracking details live in your account. Reply here with {{Order Number}} and we will check it."


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with open(path, "w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def bitext_row(instruction: str, intent: str, response: str, category: str = "ORDER") -> list[str]:
    return ["customer support", "virtual assistant", instruction, intent, "", "", "", "", category, "B", response]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def bitext_csv(tmp_path) -> Path:
    return write_csv(
        tmp_path / "bitext.csv",
        BITEXT_HEADER,
        [
            bitext_row("where is my order", "track_order", TRACK),
            bitext_row("track order please", "track_order", TRACK),
            bitext_row("wheres my parcel, mail me at jane.doe@example.com", "track_order", TRACK_NEAR),
            bitext_row("can you track it", "track_order", TRACK_OTHER),
            bitext_row(
                "cancel my order",
                "cancel_order",
                "Open {{Order Details}} and press {{Cancel Order}}. Questions? {{Customer Support Email}}.",
            ),
            bitext_row(
                "I want to cancel",
                "cancel_order",
                "Open {{Order Details}} and press {{Cancel Order}}. Questions? {{Customer Support Email}}.",
            ),
            bitext_row("talk to a human", "Contact Human Agent", "Of course, connecting you to an agent now."),
        ],
    )


# ------------------------------------------------------------------ bitext preset


def test_bitext_preset_builds_transcripts_and_templates(bitext_csv, tmp_path):
    out = tmp_path / "kb"
    rep = import_file(bitext_csv, out, preset="bitext")
    assert (rep.rows_read, rep.rows_imported, rep.skipped) == (7, 7, [])
    assert (rep.conversations, rep.turns, rep.templates) == (7, 14, 3)

    templates = {t["id"]: t for t in read_jsonl(out / "templates.jsonl")}
    assert set(templates) == {"bitext_track_order", "bitext_cancel_order", "bitext_contact_human_agent"}
    track = templates["bitext_track_order"]
    assert track["intent"] == "track_order"
    assert "{{" not in track["text"] and "{order_number}" in track["text"]
    assert track["text"].startswith("To check where your parcel is, open {order_history} on {website_name}")
    assert track["slots"] == {
        "order_history": "Order History",
        "website_name": "website",
        "order_number": "your order number",
        "track_order": "Track Order",
        "customer_support_phone_number": "our customer support phone number",
    }
    assert templates["bitext_cancel_order"]["slots"]["customer_support_email"] == "our customer support email"
    assert templates["bitext_contact_human_agent"]["slots"] == {}

    convs = read_jsonl(out / "transcripts.jsonl")
    assert [c["conversation_id"] for c in convs] == [f"bitext-{i:06d}" for i in range(1, 8)]
    agents = [c["turns"][1] for c in convs]
    # every logged message of an intent links to its template, the paraphrased answer too
    assert [a.get("template_id") for a in agents[:4]] == ["bitext_track_order"] * 4
    assert agents[3]["intent"] == "track_order"
    assert all(a["intent"] for a in agents)
    # transcript texts read as rendered templates: defaults filled, no braces
    assert agents[0]["text"].startswith(
        "To check where your parcel is, open Order History on website, pick order "
        "your order number and press Track Order."
    )
    assert all("{" not in t["text"] for c in convs for t in c["turns"])
    assert all(set(t) <= {"role", "text"} for c in convs for t in c["turns"] if t["role"] == "user")

    kb = load_kb(out)
    assert len(kb.transcripts) == 7 and len(kb.templates) == 3
    assert kb.templates["bitext_track_order"].render({"order_number": "#VW-48213"}).count("#VW-48213") == 1


def test_output_loads_and_minimal_shop_and_catalogue_are_written(bitext_csv, tmp_path):
    out = tmp_path / "new" / "kb"
    rep = import_file(bitext_csv, out, preset="bitext")
    assert sorted(Path(p).name for p in rep.files_written) == [
        "catalogue.jsonl",
        "shop.json",
        "templates.jsonl",
        "transcripts.jsonl",
    ]
    assert json.loads((out / "shop.json").read_text())["name"]
    assert (out / "catalogue.jsonl").read_text() == ""
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging folder left behind
    load_kb(out)


def test_existing_shop_and_catalogue_are_kept(bitext_csv, tmp_path):
    out = tmp_path / "kb"
    out.mkdir()
    (out / "shop.json").write_text('{"name": "Voltway", "currency": "USD", "website": "voltway.example"}\n')
    item = {"id": "VW-1001", "title": "Cable", "category": "cables", "brand": "Anker", "price": 9.99, "stock": 3}
    (out / "catalogue.jsonl").write_text(json.dumps(item) + "\n")
    rep = import_file(bitext_csv, out, preset="bitext")
    assert sorted(Path(p).name for p in rep.files_written) == ["templates.jsonl", "transcripts.jsonl"]
    kb = load_kb(out)
    assert kb.shop.name == "Voltway" and list(kb.items) == ["VW-1001"]


def test_echoed_order_number_becomes_a_slot(tmp_path):
    src = write_csv(
        tmp_path / "b.csv",
        BITEXT_HEADER,
        [
            bitext_row("cancel order 12345678 please", "cancel_order", "Order 12345678 is now cancelled."),
            bitext_row("please cancel purchase 00087654321", "cancel_order", "Purchase 87654321 is now cancelled."),
        ],
    )
    import_file(src, tmp_path / "kb", preset="bitext")
    (tpl,) = read_jsonl(tmp_path / "kb" / "templates.jsonl")
    assert "12345678" not in tpl["text"] and "87654321" not in tpl["text"]
    assert "{order_id}" in tpl["text"] and tpl["slots"]["order_id"] == "your order number"
    convs = read_jsonl(tmp_path / "kb" / "transcripts.jsonl")
    assert convs[0]["turns"][0]["text"] == "cancel order 12345678 please"  # not PII: kept
    assert convs[0]["turns"][1]["text"] == "Order your order number is now cancelled."


# ------------------------------------------------------------------ generic mapping


def test_generic_mapping_with_conversation_column_is_multi_turn(tmp_path):
    src = write_csv(
        tmp_path / "log.csv",
        ["conv", "question", "answer", "customer", "when", "topic"],
        [
            ["A 1", "hi", "Hello! How can I help?", "U1", "2026-03-14T10:22:35Z", "greeting"],
            ["B2", "refund?", "Refunds take 5 days.", "U2", "2026-03-14 11:00", "refund_status"],
            ["A 1", "where is my order", "It ships tomorrow.", "U1", "2026-03-14T10:25:00+01:00", "Track Order"],
            ["A 1", "thanks", "You're welcome!", "", "", "thanks"],
        ],
    )
    mapping = ColumnMapping(
        user="question", agent="answer", conversation="conv", user_id="customer", intent="topic", timestamp="when"
    )
    rep = import_file(src, tmp_path / "kb", mapping=mapping)
    assert (rep.conversations, rep.turns, rep.templates) == (2, 8, 4)
    convs = {c["conversation_id"]: c for c in read_jsonl(tmp_path / "kb" / "transcripts.jsonl")}
    a = convs["A_1"]
    assert [t["text"] for t in a["turns"]] == [
        "hi",
        "Hello! How can I help?",
        "where is my order",
        "It ships tomorrow.",
        "thanks",
        "You're welcome!",
    ]
    assert [t["role"] for t in a["turns"]] == ["user", "agent"] * 3
    assert a["user_id"] == "U1"
    assert a["started_at"] == "2026-03-14T09:25:00Z"  # the earliest, in UTC, whole minutes
    assert a["turns"][3]["intent"] == "track_order" and a["turns"][3]["template_id"] == "generic_track_order"
    assert convs["B2"]["user_id"] == "U2"
    kb = load_kb(tmp_path / "kb")
    assert {c.conversation_id for c in kb.transcripts} == {"A_1", "B2"}


def test_generic_jsonl_without_conversation_column_and_template_column(tmp_path):
    rows = [
        {"q": "reset my password", "a": "Use the Forgot password link.", "tpl": "pw reset", "intent": "reset_password"},
        {"q": "forgot password", "a": "Click Forgot password on the sign-in page.", "tpl": "pw reset"},
        {"q": "hello", "a": "Hi there!"},
    ]
    src = tmp_path / "log.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    rep = import_file(
        src,
        tmp_path / "kb",
        preset="generic",
        mapping=ColumnMapping(user="q", agent="a", template_id="tpl", intent="intent"),
        template_prefix="shop",
    )
    assert (rep.conversations, rep.turns, rep.templates, rep.turns_with_template) == (3, 6, 1, 2)
    (tpl,) = read_jsonl(tmp_path / "kb" / "templates.jsonl")
    assert tpl["id"] == "pw_reset" and tpl["intent"] == "reset_password"
    convs = read_jsonl(tmp_path / "kb" / "transcripts.jsonl")
    assert [c["conversation_id"] for c in convs] == ["shop-000001", "shop-000002", "shop-000003"]
    assert [c["turns"][1].get("template_id") for c in convs] == ["pw_reset", "pw_reset", None]
    assert "intent" not in convs[2]["turns"][1]
    load_kb(tmp_path / "kb")


# ------------------------------------------------------------------ bad rows


def test_bad_jsonl_rows_are_reported_with_line_numbers_and_skipped(tmp_path):
    lines = [
        json.dumps({"user": "hi", "agent": "Hello!", "ts": "2026-01-01T10:00:00Z"}),  # 1 ok
        '{"user": "broken", "agent": ',  # 2 invalid JSON
        json.dumps(["not", "an", "object"]),  # 3
        "",  # 4 blank: ignored
        json.dumps({"user": "where is it"}),  # 5 no agent
        json.dumps({"user": "   ", "agent": "Hi"}),  # 6 empty text
        json.dumps({"user": 42, "agent": "Hi"}),  # 7 wrong type
        json.dumps({"user": "when", "agent": "Soon", "ts": "next tuesday"}),  # 8 bad timestamp
        json.dumps({"user": "thanks", "agent": "Any time!", "ts": 1767261600}),  # 9 ok (epoch)
    ]
    src = tmp_path / "log.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rep = import_file(src, tmp_path / "kb", mapping=ColumnMapping(user="user", agent="agent", timestamp="ts"))
    assert rep.rows_imported == 2 and rep.rows_read == 8
    assert [s.split(": ", 1)[0] for s in rep.skipped] == [f"{src}:{n}" for n in (2, 3, 5, 6, 7, 8)]
    reasons = "\n".join(rep.skipped)
    assert "invalid JSON" in reasons and "expected a JSON object, got list" in reasons
    assert "missing value for column 'agent'" in reasons and "empty text in column 'user'" in reasons
    assert "column 'user' must be text, got int" in reasons and "unparsable timestamp 'next tuesday'" in reasons
    convs = read_jsonl(tmp_path / "kb" / "transcripts.jsonl")
    assert [c["turns"][0]["text"] for c in convs] == ["hi", "thanks"]
    assert convs[1]["started_at"] == "2026-01-01T10:00:00Z"


def test_bad_csv_rows_are_reported_with_line_numbers(tmp_path):
    src = tmp_path / "log.csv"
    src.write_text(
        "user,agent\n"  # 1
        "hi,Hello!\n"  # 2 ok
        '"a question\nover two lines","An answer"\n'  # 3-4 ok
        "only one field\n"  # 5 wrong field count
        ",Empty question\n"  # 6 empty text
        "\n"  # 7 blank: ignored
        "one,two,three\n"  # 8 wrong field count
        "bye,Goodbye!\n",  # 9 ok
        encoding="utf-8",
    )
    rep = import_file(src, tmp_path / "kb")
    assert rep.rows_imported == 3
    assert rep.skipped == [
        f"{src}:5: expected 2 fields, got 1",
        f"{src}:6: empty text in column 'user'",
        f"{src}:8: expected 2 fields, got 3",
    ]
    convs = read_jsonl(tmp_path / "kb" / "transcripts.jsonl")
    assert convs[1]["turns"][0]["text"] == "a question\nover two lines"


@pytest.mark.parametrize(
    "content,message",
    [
        ("", "the file is empty"),
        ("   \n\n", "the file is empty"),
        ("user,agent\n", "no valid rows"),
        ("user,agent\n,\n", "no valid rows"),
        ("question,answer\nhi,hello\n", "column(s) ['user', 'agent'] not in the header (found: question, answer)"),
    ],
)
def test_empty_or_useless_input_fails_clearly(tmp_path, content, message):
    src = tmp_path / "log.csv"
    src.write_text(content, encoding="utf-8")
    with pytest.raises(ImportFailed, match=r"log\.csv") as exc:
        import_file(src, tmp_path / "kb")
    assert message in str(exc.value)
    assert not (tmp_path / "kb" / "transcripts.jsonl").exists()


def test_all_rows_bad_lists_the_reasons(tmp_path):
    src = tmp_path / "log.jsonl"
    src.write_text('{"user": "hi"}\nnot json\n', encoding="utf-8")
    with pytest.raises(ImportFailed) as exc:
        import_file(src, tmp_path / "kb")
    assert exc.value.errors == [
        f"{src}:1: missing value for column 'agent'",
        f"{src}:2: invalid JSON: Expecting value (column 1)",
    ]
    assert "no valid rows to import (2 read, 2 skipped)" in str(exc.value)


def test_unknown_preset_and_missing_file(tmp_path):
    with pytest.raises(ImportFailed, match="unknown preset 'zendesk'"):
        import_file(tmp_path / "x.csv", tmp_path / "kb", preset="zendesk")
    with pytest.raises(ImportFailed, match="cannot read"):
        import_file(tmp_path / "missing.csv", tmp_path / "kb")


# ------------------------------------------------------------------ encodings


def test_non_utf8_input_is_refused_with_line_and_hint(tmp_path):
    src = tmp_path / "log.csv"
    src.write_bytes("user,agent\nhi,hello\nmy café order,Sure\n".encode("cp1252"))
    with pytest.raises(ImportFailed) as exc:
        import_file(src, tmp_path / "kb")
    msg = str(exc.value)
    assert f"{src}:3: not UTF-8 text (byte 0xe9 at column 7" in msg and "--encoding cp1252" in msg
    assert not (tmp_path / "kb").exists()


def test_explicit_encoding_reads_cp1252(tmp_path):
    src = tmp_path / "log.csv"
    src.write_bytes("user,agent\nmy café order,Sure – done\n".encode("cp1252"))
    rep = import_file(src, tmp_path / "kb", encoding="cp1252")
    assert rep.encoding == "cp1252"
    (conv,) = read_jsonl(tmp_path / "kb" / "transcripts.jsonl")
    assert [t["text"] for t in conv["turns"]] == ["my café order", "Sure – done"]


def test_utf8_with_bom_is_read(tmp_path):
    src = write_csv(tmp_path / "log.csv", ["user", "agent"], [["héllo", "hí"]], encoding="utf-8-sig")
    assert src.read_bytes().startswith(b"\xef\xbb\xbf")
    rep = import_file(src, tmp_path / "kb")
    assert rep.encoding == "utf-8-sig" and rep.rows_imported == 1


# ------------------------------------------------------------------ masking


def test_personal_data_is_masked_in_every_written_text(bitext_csv, tmp_path):
    src = write_csv(
        tmp_path / "log.csv",
        ["user", "agent", "uid"],
        [
            [
                "my email is jane.doe@example.com and card 4111 1111 1111 1111",
                "Thanks Jane, we'll write to jane.doe@example.com or call +1 (415) 555-0134.",
                "jane.doe@example.com",
            ],
            ["my name is John Smith, order #VW-48213", "Hi John, #VW-48213 ships today.", "U7"],
        ],
    )
    import_file(src, tmp_path / "kb", mapping=ColumnMapping(user="user", agent="agent", user_id="uid"))
    written = (tmp_path / "kb" / "transcripts.jsonl").read_text(encoding="utf-8")
    for secret in ("jane.doe@example.com", "4111", "555-0134", "John Smith"):
        assert secret not in written
    convs = read_jsonl(tmp_path / "kb" / "transcripts.jsonl")
    assert convs[0]["turns"][0]["text"] == "my email is <EMAIL> and card <CARD_NUMBER>"
    assert "<EMAIL>" in convs[0]["turns"][1]["text"] and "<PHONE>" in convs[0]["turns"][1]["text"]
    assert convs[0]["user_id"].startswith("U") and "@" not in convs[0]["user_id"]  # pseudonymised
    assert convs[1]["user_id"] == "U7"
    assert "#VW-48213" in convs[1]["turns"][0]["text"]  # order numbers are not personal data

    # and in templates (the bitext fixture has an e-mail in a customer message only)
    import_file(bitext_csv, tmp_path / "kb2", preset="bitext")
    assert "jane.doe" not in (tmp_path / "kb2" / "transcripts.jsonl").read_text(encoding="utf-8")


def test_placeholders_are_not_masked_and_pii_in_templates_is(tmp_path):
    src = write_csv(
        tmp_path / "b.csv",
        BITEXT_HEADER,
        [
            bitext_row("contact?", "contact", "Write to help@shop.example or call {{Customer Support Phone Number}}."),
        ],
    )
    import_file(src, tmp_path / "kb", preset="bitext")
    (tpl,) = read_jsonl(tmp_path / "kb" / "templates.jsonl")
    assert tpl["text"] == "Write to <EMAIL> or call {customer_support_phone_number}."


# ------------------------------------------------------------------ existing output


def test_existing_output_needs_overwrite_or_merge(bitext_csv, tmp_path):
    out = tmp_path / "kb"
    import_file(bitext_csv, out, preset="bitext")
    before = (out / "transcripts.jsonl").read_bytes()
    with pytest.raises(ImportFailed, match="already holds transcripts.jsonl, templates.jsonl"):
        import_file(bitext_csv, out, preset="bitext")
    assert (out / "transcripts.jsonl").read_bytes() == before

    other = write_csv(tmp_path / "other.csv", ["user", "agent", "cid"], [["new q", "new a", "X1"]])
    import_file(other, out, mapping=ColumnMapping(user="user", agent="agent", conversation="cid"), on_existing="merge")
    ids = [c["conversation_id"] for c in read_jsonl(out / "transcripts.jsonl")]
    assert ids == [f"bitext-{i:06d}" for i in range(1, 8)] + ["X1"]
    assert len(load_kb(out).templates) == 3

    import_file(
        other, out, mapping=ColumnMapping(user="user", agent="agent", conversation="cid"), on_existing="overwrite"
    )
    assert [c["conversation_id"] for c in read_jsonl(out / "transcripts.jsonl")] == ["X1"]
    assert (out / "templates.jsonl").read_text() == ""  # no intents, so no templates
    load_kb(out)


def test_a_result_that_would_not_load_changes_nothing(bitext_csv, tmp_path):
    out = tmp_path / "kb"
    out.mkdir()
    (out / "templates.jsonl").write_text('{"id": "broken"}\n', encoding="utf-8")
    with pytest.raises(ImportFailed, match="would not load; nothing was written") as exc:
        import_file(bitext_csv, out, preset="bitext", on_existing="merge")
    assert any("templates.jsonl:1:" in e for e in exc.value.errors)
    assert sorted(p.name for p in out.iterdir()) == ["templates.jsonl"]
    assert (out / "templates.jsonl").read_text(encoding="utf-8") == '{"id": "broken"}\n'


# ------------------------------------------------------------------ helpers


@pytest.mark.parametrize(
    "placeholder,name,default",
    [
        ("Order Number", "order_number", "your order number"),
        ("Order Number Anonymized", "order_number", "your order number"),
        ("Purchase ID Anonymized", "purchase_id", "your purchase ID"),
        ("Customer Support Phone Number", "customer_support_phone_number", "our customer support phone number"),
        ("Customer Support Availability", "customer_support_availability", "during our opening hours"),
        ("Website Name", "website_name", "website"),
        ("Live Chat", "live_chat", "Live Chat"),
        ("Order Details", "order_details", "Order Details"),
        ("Shipping Address", "shipping_address", "your shipping address"),
        ("number of days", "number_of_days", "number of days"),
        ("113542617735902", "reference_number", "your reference number"),
        (
            "7C23D0EF3E8A2D89E89176EFDAA748B42A613942012DD9CE1AB237D72381004B",
            "reference_number",
            "your reference number",
        ),
        (
            '"Refund Policy" or "Money Back Guarantee"',
            "refund_policy_or_money_back_guarantee",
            '"Refund Policy" or "Money Back Guarantee"',
        ),
    ],
)
def test_slot_names_and_defaults(placeholder, name, default):
    assert slot_name(placeholder) == name
    assert slot_default(placeholder) == default


def test_medoid_is_the_most_central_and_deterministic():
    texts = ["a b c d", "a b c e", "a b c d", "x y z", "a b c f"]
    assert medoid(texts) == "a b c d"
    assert medoid(["p q", "r s"]) == "p q"  # a tie goes to the earliest
    assert medoid(list(reversed(texts))) == "a b c d"


def test_literal_braces_do_not_become_slots(tmp_path):
    src = write_csv(
        tmp_path / "log.csv",
        ["user", "agent", "intent"],
        [
            ["json?", 'Send {"a": 1} to {{Support Email}}.', "api"],
        ],
    )
    import_file(src, tmp_path / "kb", mapping=ColumnMapping(user="user", agent="agent", intent="intent"))
    (tpl,) = read_jsonl(tmp_path / "kb" / "templates.jsonl")
    assert tpl["text"] == 'Send ("a": 1) to {support_email}.'
    assert tpl["slots"] == {"support_email": "our support email"}
    load_kb(tmp_path / "kb")


def test_progress_bar_runs(bitext_csv, tmp_path):
    rep = import_file(bitext_csv, tmp_path / "kb", preset="bitext", progress=True)
    assert rep.rows_imported == 7


# ------------------------------------------------------------------ command line


@pytest.fixture
def cli():
    @click.group()
    def main():
        pass

    register(main)
    return main


def test_cli_import_prints_counts_and_reasons(cli, tmp_path):
    src = tmp_path / "log.csv"
    src.write_text("q,a,conv\nhi,Hello!,c1\nbad row\nthanks,Welcome!,c1\n", encoding="utf-8")
    out = tmp_path / "kb"
    res = CliRunner().invoke(
        cli,
        [
            "import",
            str(src),
            "--out",
            str(out),
            "--user-col",
            "q",
            "--agent-col",
            "a",
            "--conversation-col",
            "conv",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "3 rows read, 2 imported, 1 skipped" in res.output
    assert "1 conversations, 4 turns, 0 templates" in res.output
    assert f"{src}:3: expected 3 fields, got 1" in res.output
    load_kb(out)

    again = CliRunner().invoke(cli, ["import", str(src), "--out", str(out), "--user-col", "q", "--agent-col", "a"])
    assert again.exit_code == 1 and "pass --overwrite or --merge" in again.output


def test_cli_bitext_preset_and_errors(cli, bitext_csv, tmp_path):
    res = CliRunner().invoke(
        cli,
        [
            "import",
            str(bitext_csv),
            "--preset",
            "bitext",
            "--out",
            str(tmp_path / "kb"),
            "--format",
            "csv",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "7 conversations, 14 turns, 3 templates" in res.output

    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    res = CliRunner().invoke(cli, ["import", str(empty), "--out", str(tmp_path / "kb2")])
    assert res.exit_code == 1 and "the file is empty" in res.output


def test_the_importer_registry_loads_each_importer_and_names_the_valid_ones_for_an_unknown_one():
    from chatrec.importers import IMPORTERS, get_importer

    assert {name: callable(get_importer(name)) for name in IMPORTERS} == {
        "qa-logs": True,
        "redial": True,
        "inspired": True,
    }
    with pytest.raises(KeyError, match="choose from inspired, qa-logs, redial"):
        get_importer("opendialkg")


def test_bitext_importer_links_only_27_rows_is_fixed_every_logged_message_links(bitext_csv, tmp_path):
    """Issue 17: the importer linked one message per intent; every row of an intent now links to its
    template (the router learns from all of them); ``link_all=False`` keeps the near-identical rule."""
    every = import_file(bitext_csv, tmp_path / "all", preset="bitext")
    assert every.turns_with_template == every.rows_imported == 7
    similar = import_file(bitext_csv, tmp_path / "similar", preset="bitext", link_all=False)
    assert similar.turns_with_template < 7
