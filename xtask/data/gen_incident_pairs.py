#!/usr/bin/env python3
"""Writes incident_pairs.tsv: labelled pairs of reports for the incident matcher bench.

Run from the repository root: python3 xtask/data/gen_incident_pairs.py [lapormasbup.csv]
A fixed seed makes the file the same every time. Kinds of pairs:

  dup_paraphrase     same problem, same spot (0-250 m), different words     -> 1
  dup_desa_only      same problem, no coordinates on one side, same desa    -> 1
  dup_same_words     same problem, same spot, nearly the same words         -> 1
  same_words_far     the same text reported 600 m - 8 km away               -> 0
  same_place_other   another problem at the same spot                       -> 0
  same_cat_other     the same category, same spot, another problem          -> 0
  too_old            the same problem at the same spot, 20-60 days apart    -> 0
  fixture_far        a real complaint (shared Lapor Mas Bup set) far away   -> 0
  fixture_other      two real complaints of other sectors at the same spot  -> 0
"""
import csv
import random
import sys

random.seed(20261205)

# (category, opd, [phrasings of one concrete problem])
PROBLEMS = [
    ("drainase", "DPU", [
        "Saluran air di depan pasar tersumbat sampah, air meluap ke jalan",
        "selokan depan pasar mampet penuh sampah, kalau hujan airnya meluap ke jalan",
        "Got di dekat pasar buntu karena sampah, jalan jadi tergenang",
        "saluran drainase pasar tersumbat, genangan air sampai ke jalan raya",
        "air selokan meluap di depan pasar karena saluran tersumbat sampah plastik",
    ]),
    ("jalan", "DPU", [
        "Jalan berlubang besar di depan SD Negeri 2, sudah banyak motor jatuh",
        "lubang besar di jalan depan SDN 2 membahayakan pengendara motor",
        "jalan depan sekolah SD 2 rusak berlubang, anak sekolah hampir jatuh",
        "Aspal jalan depan SD Negeri 2 berlubang dalam, tolong ditambal",
        "jalan rusak berlubang di depan SDN 2, motor sering terjatuh",
    ]),
    ("penerangan", "DISHUB", [
        "Lampu penerangan jalan di perempatan mati sudah seminggu, gelap sekali",
        "PJU di perempatan padam sejak minggu lalu, rawan kecelakaan malam hari",
        "lampu jalan perempatan tidak menyala, jalan gelap gulita",
        "penerangan jalan umum di perempatan mati total, mohon diperbaiki",
        "lampu PJU perempatan mati, malam hari gelap dan rawan",
    ]),
    ("sampah", "DLH", [
        "Sampah menumpuk di TPS belakang balai desa tidak diangkut seminggu, bau sekali",
        "TPS balai desa penuh sampah belum diangkut, baunya menyengat",
        "tumpukan sampah di TPS dekat balai desa tidak diangkut truk sampah",
        "sampah di tempat pembuangan belakang balai desa menggunung dan berbau",
        "truk sampah tidak mengangkut sampah TPS balai desa, menumpuk dan bau",
    ]),
    ("pohon", "DLH", [
        "Pohon besar tumbang menutup jalan di dekat masjid, kendaraan tidak bisa lewat",
        "pohon tumbang melintang di jalan dekat masjid, jalan tertutup",
        "ada pohon roboh menghalangi jalan dekat masjid setelah hujan angin",
        "pohon beringin tumbang di jalan samping masjid, mohon segera dievakuasi",
        "jalan dekat masjid tertutup pohon tumbang akibat angin kencang",
    ]),
    ("air_bersih", "PDAM", [
        "Air PDAM tidak mengalir sudah tiga hari di perumahan kami",
        "PDAM mati total tiga hari, warga perumahan kesulitan air bersih",
        "air ledeng PDAM tidak keluar sejak tiga hari lalu di perumahan",
        "aliran air PDAM di perumahan terhenti tiga hari tanpa pemberitahuan",
        "sudah tiga hari air PDAM tidak mengalir ke rumah warga perumahan",
    ]),
    ("banjir", "BPBD", [
        "Banjir setinggi lutut di jalan kampung setelah hujan deras, rumah warga kemasukan air",
        "kampung kami kebanjiran, air masuk rumah setinggi lutut",
        "banjir di jalan kampung, air masuk ke rumah-rumah warga setelah hujan",
        "hujan deras bikin banjir di kampung, air sampai lutut masuk rumah",
        "genangan banjir di kampung masuk ke rumah warga setinggi lutut",
    ]),
    ("jembatan", "DPU", [
        "Jembatan kayu di dusun rusak papannya lapuk dan berlubang, berbahaya dilewati",
        "papan jembatan dusun lapuk dan patah, anak sekolah takut lewat",
        "jembatan penghubung dusun rusak, kayunya lapuk bolong",
        "jembatan kayu dusun hampir ambruk, papan berlubang dan lapuk",
        "kondisi jembatan dusun rusak parah, papan kayu lapuk dan berlubang",
    ]),
    ("parkir", "DISHUB", [
        "Parkir liar di trotoar depan minimarket bikin macet jalan",
        "trotoar depan minimarket dipakai parkir liar, jalan jadi macet",
        "banyak mobil parkir sembarangan di depan minimarket sampai macet",
        "parkir liar depan minimarket menutup trotoar dan membuat kemacetan",
        "kemacetan karena parkir liar di trotoar minimarket",
    ]),
    ("kebisingan", "SATPOLPP", [
        "Tempat karaoke di ujung gang bising sampai jam dua pagi setiap malam",
        "karaoke di ujung gang berisik sampai dini hari, warga tidak bisa tidur",
        "suara karaoke gang sebelah keras sekali sampai jam 2 pagi",
        "warga terganggu kebisingan karaoke di ujung gang tiap malam",
        "karaoke ujung gang mengganggu, musik keras hingga larut malam",
    ]),
]

def tsv(s):
    return " ".join(s.replace("\t", " ").split())

rows = []

def add(label, kind, dist, desa, a, b, age_h, ta, tb):
    rows.append([str(label), kind, "" if dist is None else f"{dist:.0f}", str(int(desa)),
                 a[0], b[0], a[1], b[1], f"{age_h:.0f}", tsv(ta), tsv(tb)])

for cat, opd, texts in PROBLEMS:
    p = (cat, opd)
    pairs = [(i, j) for i in range(len(texts)) for j in range(len(texts)) if i < j]
    for i, j in pairs:  # 10 per problem
        add(1, "dup_paraphrase", random.uniform(0, 250), True, p, p, random.uniform(0, 240),
            texts[i], texts[j])
    for i, j in random.sample(pairs, 3):
        add(1, "dup_desa_only", None, True, p, p, random.uniform(0, 200), texts[i], texts[j])
    for i in random.sample(range(len(texts)), 2):
        add(1, "dup_same_words", random.uniform(0, 150), True, p, p, random.uniform(0, 100),
            texts[i], texts[i] + " mohon segera")
    for i in random.sample(range(len(texts)), 3):
        far = random.uniform(600, 8000)
        add(0, "same_words_far", far, far < 1500, p, p, random.uniform(0, 200), texts[i],
            texts[(i + 1) % len(texts)])
    for _ in range(4):
        ocat, oopd, otexts = random.choice([x for x in PROBLEMS if x[0] != cat])
        add(0, "same_place_other", random.uniform(0, 200), True, p, (ocat, oopd),
            random.uniform(0, 200), random.choice(texts), random.choice(otexts))
    for _ in range(2):
        same_opd = [x for x in PROBLEMS if x[1] == opd and x[0] != cat]
        if same_opd:
            ocat, oopd, otexts = random.choice(same_opd)
            add(0, "same_cat_other", random.uniform(0, 200), True, p, (ocat, oopd),
                random.uniform(0, 200), random.choice(texts), random.choice(otexts))
    for i, j in random.sample(pairs, 2):
        add(0, "too_old", random.uniform(0, 200), True, p, p, random.uniform(20 * 24, 60 * 24),
            texts[i], texts[j])

# Real complaints from the shared Lapor Mas Bup set (Purbalingga): the same text far away,
# and two texts of other sectors at one spot.
path = sys.argv[1] if len(sys.argv) > 1 else \
    "/work/shared/datasets/lapormasbup-purbalingga/lapormasbup_kategori.csv"
with open(path, newline="", encoding="utf-8") as f:
    real = [(r["text"], r["kategori"]) for r in csv.DictReader(f) if 30 <= len(r["text"]) <= 300]
random.shuffle(real)
for text, sector in real[:25]:
    far = random.uniform(700, 10000)
    c = (sector.lower(), sector.upper()[:6])
    add(0, "fixture_far", far, False, c, c, random.uniform(0, 300), text, text)
others = real[25:]
n = 0
for i in range(0, len(others) - 1, 2):
    (ta, sa), (tb, sb) = others[i], others[i + 1]
    if sa == sb:
        continue
    add(0, "fixture_other", random.uniform(0, 250), True, (sa.lower(), sa.upper()[:6]),
        (sb.lower(), sb.upper()[:6]), random.uniform(0, 300), ta, tb)
    n += 1
    if n == 25:
        break

header = ["label", "kind", "distance_m", "same_desa", "category_a", "category_b", "opd_a",
          "opd_b", "age_hours", "text_a", "text_b"]
with open("xtask/data/incident_pairs.tsv", "w", encoding="utf-8") as f:
    f.write("\t".join(header) + "\n")
    for r in rows:
        f.write("\t".join(r) + "\n")
print(len(rows), "pairs;", sum(r[0] == "1" for r in rows), "duplicates")
