"""The official openai client against `chatrec serve` (start it first: chatrec serve --port 8000)."""

from openai import OpenAI

client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="not-needed")
reply = client.chat.completions.create(
    model="chatrec", user="U002", messages=[{"role": "user", "content": "Can you recommend a case for my Pixel 8?"}]
)
print(reply.choices[0].message.content)
for rec in reply.model_extra["chatrec"]["recommendations"]:
    print("-", rec["item_id"], rec["title"], rec["price"], "|", rec["reason"])
print("usage:", reply.usage)
