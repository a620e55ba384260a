from chatrec.integrations.langchain import CatalogueRetriever, as_runnable


def test_runnable_invoke_and_stream(fake_bot):
    turn = as_runnable(fake_bot)
    out = turn.invoke({"message": "How do I return my headphones?", "user_id": "U001"})
    assert out["route"] == "service" and out["text"]
    pieces = list(turn.stream("recommend wireless earbuds"))
    assert isinstance(pieces[-1], dict) and pieces[-1]["recommendations"]
    assert all(isinstance(p, str) for p in pieces[:-1]) and len(pieces) > 2


def test_retriever_returns_documents(fake_bot):
    docs = CatalogueRetriever(bot=fake_bot, k=3).invoke("noise cancelling headphones")
    assert len(docs) == 3 and all(d.metadata["item_id"] in fake_bot.kb.items for d in docs)
