#!/usr/bin/env python3
"""Writes testdata/redaction/prompts.jsonl: synthetic prompts in several
languages with planted personal data and secrets (every value invented;
check digits computed so that valid-looking ones are valid) and distractors
that look like numbers of the same shape but are not personal data.
Deterministic (fixed seed). Each line: {"lang", "prompt", "planted": [{"kind", "text"}]}."""
import json, random, string, sys

R = random.Random(1414)

def luhn_complete(prefix, length):
    d = [int(c) for c in prefix] + [R.randrange(10) for _ in range(length - len(prefix) - 1)]
    for check in range(10):
        digits = d + [check]
        s = 0
        for i, x in enumerate(reversed(digits)):
            if i % 2 == 1:
                x *= 2
                if x > 9: x -= 9
            s += x
        if s % 10 == 0:
            return "".join(map(str, digits))

def group(s, sizes, sep):
    out, i = [], 0
    for n in sizes:
        out.append(s[i:i + n]); i += n
    if i < len(s): out.append(s[i:])
    return sep.join(out)

def card():
    kind = R.choice(["visa", "mc", "amex", "disc", "mc2"])
    if kind == "amex":
        n = luhn_complete(R.choice(["34", "37"]), 15)
        return group(n, [4, 6, 5], R.choice([" ", "-", ""]))
    pre = {"visa": "4", "mc": str(R.randint(51, 55)), "disc": "6011", "mc2": "2" + str(R.randint(221, 720))}[kind]
    n = luhn_complete(pre, 16)
    return group(n, [4, 4, 4, 4], R.choice([" ", "-", ""]))

IBAN_LEN = {"DE": 22, "FR": 27, "GB": 22, "ES": 24, "IT": 27, "NL": 18, "BE": 16, "CH": 21, "AT": 20, "PL": 28, "PT": 25}

def iban():
    cc = R.choice(list(IBAN_LEN))
    n = IBAN_LEN[cc] - 4
    if cc in ("GB", "NL"):
        bban = "".join(R.choice(string.ascii_uppercase) for _ in range(4)) + "".join(R.choice(string.digits) for _ in range(n - 4))
    elif cc in ("FR", "IT"):
        bban = ("" if cc == "FR" else R.choice(string.ascii_uppercase)) + "".join(R.choice(string.digits) for _ in range(n - (0 if cc == "FR" else 1)))
    else:
        bban = "".join(R.choice(string.digits) for _ in range(n))
    num = "".join(str(int(c, 36)) for c in bban + cc + "00")
    check = 98 - int(num) % 97
    s = f"{cc}{check:02d}{bban}"
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4)) if R.random() < 0.6 else s

def email():
    first = R.choice(["anna", "jean.dupont", "m.schmidt", "li_wei", "sofia", "j.o'neil".replace("'", ""), "kenji", "maria-luisa", "tom+news"])
    dom = R.choice(["example.com", "mail.example.org", "beispiel.de", "exemple.fr", "correo.es", "uni-example.ac.uk", "example.co.jp"])
    e = f"{first}{R.randint(1, 99)}@{dom}"
    return e.upper() if R.random() < 0.1 else e

def phone():
    f = R.randrange(9)
    d = lambda n: "".join(R.choice(string.digits) for _ in range(n))
    return [
        lambda: f"+1 ({R.randint(201, 989)}) {R.randint(200, 999)}-{d(4)}",
        lambda: f"+44 20 {d(4)} {d(4)}",
        lambda: f"+33 {R.randint(1, 9)} {d(2)} {d(2)} {d(2)} {d(2)}",
        lambda: f"+49 30 {d(8)}",
        lambda: f"+81-3-{d(4)}-{d(4)}",
        lambda: f"0{R.randint(6, 7)} {d(2)} {d(2)} {d(2)} {d(2)}",
        lambda: f"({R.randint(201, 989)}) {R.randint(200, 999)}-{d(4)}",
        lambda: f"0044 7700 {d(6)}",
        lambda: f"+34 {R.randint(600, 699)} {d(3)} {d(3)}",
    ][f]()

def national_id():
    f = R.randrange(4)
    if f == 0:
        while True:
            a = R.randint(1, 899)
            if a != 666: break
        return f"{a:03d}-{R.randint(1, 99):02d}-{R.randint(1, 9999):04d}"
    if f == 1:
        first = R.choice("ABCEGHJKLMNOPRSTWXYZ"); second = R.choice("ABCEGHJKLMNPRSTWXYZ")
        if first + second in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ"): first, second = "A", "B"
        d = "".join(R.choice(string.digits) for _ in range(6))
        suffix = R.choice("ABCD")
        return f"{first}{second} {d[:2]} {d[2:4]} {d[4:]} {suffix}" if R.random() < 0.5 else f"{first}{second}{d}{suffix}"
    if f == 2:
        body = f"{R.randint(1, 2)}{R.randint(40, 99):02d}{R.randint(1, 12):02d}{R.randint(1, 95):02d}{R.randint(1, 999):03d}{R.randint(1, 999):03d}"
        key = 97 - int(body) % 97
        s = body + f"{key:02d}"
        return f"{s[0]} {s[1:3]} {s[3:5]} {s[5:7]} {s[7:10]} {s[10:13]} {s[13:]}" if R.random() < 0.5 else s
    n = R.randint(10000000, 99999999)
    return f"{n}{'TRWAGMYFPDXBNJZSQVHLCKE'[n % 23]}"

def ip():
    if R.random() < 0.55:
        return ".".join(str(R.randint(1, 254)) for _ in range(4))
    groups = [f"{R.randint(0, 0xffff):x}" for _ in range(8)]
    if R.random() < 0.5:
        return ":".join(groups)
    return "2001:db8:" + ":".join(groups[:2]) + "::" + groups[7]

def secret():
    al = string.ascii_letters + string.digits
    r = lambda n, a=al: "".join(R.choice(a) for _ in range(n))
    return R.choice([
        lambda: "sk-" + r(40),
        lambda: "sk-ant-api03-" + r(60),
        lambda: "ghp_" + r(36),
        lambda: "AKIA" + r(16, string.ascii_uppercase + string.digits),
        lambda: "xoxb-" + r(12, string.digits) + "-" + r(24),
        lambda: "AIza" + r(35),
        lambda: "hf_" + r(34),
        lambda: "glpat-" + r(20),
        lambda: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIx" + r(20) + "." + r(43),
        lambda: r(40),
    ])()

GEN = {"email": email, "phone": phone, "iban": iban, "card": card, "national_id": national_id, "ip": ip, "secret": secret}

def distractor():
    return R.choice([
        lambda: f"order #{R.randint(10000, 999999)}",
        lambda: f"on {R.randint(2019, 2027)}-{R.randint(1, 12):02d}-{R.randint(1, 28):02d}",
        lambda: f"at {R.randint(0, 23):02d}:{R.randint(0, 59):02d}:{R.randint(0, 59):02d}",
        lambda: f"version {R.randint(0, 9)}.{R.randint(0, 20)}.{R.randint(0, 30)}",
        lambda: f"{R.randint(2, 999)},{R.randint(0, 99):02d} EUR",
        lambda: f"${R.randint(1, 99999)}.{R.randint(0, 99):02d}",
        lambda: f"invoice INV-{R.randint(2019, 2027)}-{R.randint(1, 9999):04d}",
        lambda: f"commit {''.join(R.choice('0123456789abcdef') for _ in range(7))}",
        lambda: f"room {R.randint(100, 999)}",
        lambda: f"{R.randint(1, 100)}% of {R.randint(1000, 99999)} users",
        lambda: f"ISBN 978-{R.randint(0, 9)}-{R.randint(100, 999)}-{R.randint(10000, 99999)}-{R.randint(0, 9)}",
        lambda: f"tracking number {R.randint(10**11, 10**12 - 1)}",
        lambda: f"the function parse_config_file_with_defaults",
    ])()

TEMPLATES = {
    "en": ["Please write a polite reply to {x} about {d}.", "Summarise this: the customer gave {x} when we spoke {d}.", "Can you check whether {x} looks right? It was mentioned with {d}.", "My details: {x}. Reference {d}."],
    "fr": ["Peux-tu rédiger une réponse à {x} concernant {d} ?", "Résume ce message : le client a donné {x} lors de l'appel, {d}.", "Voici mes coordonnées : {x} (référence {d})."],
    "de": ["Bitte schreibe eine Antwort an {x} wegen {d}.", "Fasse zusammen: Der Kunde hat {x} angegeben, {d}.", "Meine Daten: {x}, Vorgang {d}."],
    "es": ["Escribe una respuesta a {x} sobre {d}.", "Resume esto: el cliente dio {x} en la llamada, {d}.", "Mis datos son {x}, referencia {d}."],
    "it": ["Scrivi una risposta a {x} riguardo {d}.", "Riassumi: il cliente ha fornito {x}, {d}."],
    "nl": ["Schrijf een antwoord aan {x} over {d}.", "Mijn gegevens: {x}, kenmerk {d}."],
    "ja": ["{x} について確認してください（{d}）。", "顧客の情報：{x}、{d}。"],
}

rows = []
kinds = list(GEN)
for i in range(240):
    lang = list(TEMPLATES)[i % len(TEMPLATES)]
    n = 1 + (i % 3 == 0)
    planted = [{"kind": kinds[(i + j * 3) % len(kinds)], "text": GEN[kinds[(i + j * 3) % len(kinds)]]()} for j in range(n)]
    x = " and ".join(p["text"] for p in planted) if lang != "ja" else "、".join(p["text"] for p in planted)
    t = R.choice(TEMPLATES[lang])
    rows.append({"lang": lang, "prompt": t.format(x=x, d=distractor()), "planted": planted})
# Prompts with nothing to find: only distractors.
for i in range(40):
    lang = list(TEMPLATES)[i % len(TEMPLATES)]
    t = R.choice(TEMPLATES[lang])
    rows.append({"lang": lang, "prompt": t.format(x=distractor(), d=distractor()), "planted": []})
with open(sys.argv[1] if len(sys.argv) > 1 else "testdata/redaction/prompts.jsonl", "w") as f:
    for r in rows:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
