//! An Indonesian stemmer for keyword rules, after Nazief–Adriani (confix stripping checked
//! against a list of root words), written for complaints as residents type them.
//!
//! No maintained Rust crate does this (rust-stemmers' Snowball set has no Indonesian; the
//! 2020 `sastrawi` port is unmaintained and regex-based), so this is a small table-driven
//! module: [`ROOTS`] is a list of root words of the complaint vocabulary (public services,
//! infrastructure, administration, health, environment, everyday words), the affix tables
//! below say what may be stripped, and every rule is tried only as far as it leads to a
//! root.
//!
//! [`stem`] of a word:
//! 1. Reduplication: `jalan-jalan` and `lampu2` are their first half.
//! 2. A root (or a word of at most three letters) is its own stem: `jalan`, `lampu`,
//!    `mati` and `sekolah` never lose a "suffix".
//! 3. Suffixes are removed in the standard order — particle (`-lah`, `-kah`, `-pun`,
//!    `-tah`), possessive (`-ku`, `-mu`, `-nya`), derivational (`-kan`, `-an`, `-i`, and
//!    the colloquial `-in`) — and after each step the word is checked against the roots.
//! 4. Prefixes are removed from the word with and without its derivational suffix, up to
//!    three deep (`diperbaiki` → `perbaik` → `baik`), with the nasal recoding of `me-` and
//!    `pe-`: `menyapu` → `sapu`, `memukul` → `pukul`, `menulis` → `tulis`, `mengirim` →
//!    `kirim`, and the colloquial bare nasal (`numpuk` → `tumpuk`, `nyapu` → `sapu`,
//!    `ngirim` → `kirim`). The first candidate that is a root wins.
//! 5. A word that leads to no root is stripped lightly — particle and possessive, then one
//!    derivational suffix and one plain prefix, each only when four letters are left — so
//!    that a keyword and a text word the list doesn't know still meet (`drainasenya` ~
//!    `drainase`).
//!
//! Keywords and text go through the same function, so a wrong root still matches itself;
//! what the root list buys is that different words don't collapse into one (`jalan` stays
//! `jalan`, not `jal`) and that affixed forms find their root.

use std::collections::HashSet;
use std::sync::LazyLock;

use aduan_core::words::PREFIXES;

/// Root words (*kata dasar*) of the complaint vocabulary, whitespace separated.
const ROOTS: &str = "
ada adu air ajar akta aku alam alat alir ambil ambulans aman amen anak angin angkat angkot
angkut antar antre antri anggar api apung arah arsip asap aspal atap atas atur awas
bagi bahaya baik bakar balai balas balik bangun banjir bantu banyak barang baru batas batu
bau bawa bayar bea bebas bedah beku bela beli benah benar bencana bengkel berani beras
berat beri berita bersih besar betul biaya bicara bidan bikin bimbing bina bising blangko
bocor bodoh bolong bongkar buang buat bubar buka bukti buku bulan bunga buruh buruk busuk
butuh cabut cacat cair cakup calon camat campur capai capil cari catat cek cepat cerai
cetak cuci curang curi dagang dalam damai dampak dana darah darat darurat dasar data datang
daftar dapat dapur daya debu dekat demam dengar denda depan deras desa didik dinas dingin
diri dokter dorong duduk dukung dusun edar ekonomi elektronik emis empat gagal gaji gali
ganggu ganti gantung gawai gedung gelap gelandang genang gerak gizi gorong got gratis guna
guru hadap hadir hak hambat hancur hanyut harap harga hari hasil hewan hidup hijau hilang
hitung hubung hujan huni hutan ikan ikut ilegal imunisasi indah informasi ingat injak ipal
irigasi isi istirahat izin jadi jadwal jaga jalan jalur jamin janji jatuh jawab jembatan
jemput jual judi juru kabar kabel kacau kait kali kamar kampung kantor kapan karang kartu
kasih kasus kawal kawasan kebun kecil keluarga keluh kemis kena kendara kepala keras kering
kerja keruh kios kirim kobar kolam kondisi kontrak korban kosong kota kotor kuasa kubur kumpul
kunjung kurang kursi lahan lahir lain laku lalu lama lambat lampu lancar langgar langka
lantar lapang lapor lari latih laut layak layan lewat liar licin limbah lindung lingkung
lintas listrik lobang lokasi longsor lubang lurah lurus luar macet mahal main makam makan
maksud malam maling malu mampet mandi mangkrak mantan marah masa masak masalah masuk masyarakat
mata mati mau meja menang meter milik minta minum miskin misal mobil modal mohon motor mukim
mulai mundur murah murid musim nama nanti nikah nilai nyala nyaman obat olah orang pagar
pajak pakai paksa paling panas pandu pangkas panjang pantau pasang pasar pasien patah patuh
padam pecah pedas peduli pelihara peluk penuh perintah periksa perlu pernah pesan pikir pilih
pimpin pindah pinjam pipa pohon pokok polisi potong pukul pulang pungli pungut punya pupuk
pusat putus racun rakyat ramai rambu rapat rawan rawat rekam rencana resah retak retribusi
ribut rugi rujuk rumah runtuh rusak saat sabar sakit salah salur sambung sampah samping
sampai sapi sapu saring sawah sayang sebab sedia sehat sekolah selesai selokan semak
sembako sempit sepeda serah serang sertifikat setuju siar siap sidang sikat sinyal siswa
situ sobek sopir subsidi suka sulit sumbat sumur sungai surat susah susun syarat tagih
tahan tahu tahun takut tambah tambal tambang tanah tanam tanda tangan tangga tangkap tani
tanya tarik tata tebang tegur teliti tempat tenaga tengah terang terbit terima terus tetap
tiang tidur tiket tilang timbun timbang tindak tinggal tingkat tinjau tipu titik tolak
tolong tonton tua tuju tukang tulis tumbang tumpah tumpuk tunggu tunjuk turun tutup uang
ubah ujar ukur ulang umum ungsi untung upah urus usaha usul usir utama wabah wajib waktu
wakil warga warung wilayah
baca bangkai bebek belok benci beri bilang bocah bolos buruk bus cat celaka curah dapat
dorong guyur hama hambur irit jemur jeblok jebol kebut kuning larang lepas linang lonjak
luap mapan masih merah nakal obral ongkos pakan pecat peras perkara pesta pinggir rebut
rendam retas rombak runtuh sebar sedot segel sekat sengketa sewa siram sumbang tabrak
tampung tarif tawar tebar tegak telat tempel tenggelam tiba timbul titip tumbuh ubin
bagaimana bener beres minggu tinggi tugas
";

static ROOT_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| ROOTS.split_whitespace().collect());

/// Whether `w` is in the root list.
pub fn is_root(w: &str) -> bool {
    ROOT_SET.contains(w)
}

const PARTICLES: &[&str] = &["lah", "kah", "pun", "tah"];
const POSSESSIVES: &[&str] = &["nya", "ku", "mu"];
/// Derivational suffixes, longest first; `-in` is the colloquial `-kan`/`-i`
/// (`benerin`, `diangkutin`).
const DERIVATIONAL: &[&str] = &["kan", "an", "in", "i"];

fn is_vowel(c: u8) -> bool {
    matches!(c, b'a' | b'e' | b'i' | b'o' | b'u')
}

/// Every word one prefix removal can leave, recoded where the nasal ate a letter.
fn strip_one_prefix(w: &str) -> Vec<String> {
    let b = w.as_bytes();
    let mut out = Vec::new();
    let rest = |n: usize| w[n..].to_owned();
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    // Plain prefixes.
    for p in ["di", "ke", "se", "ter", "ber", "per"] {
        if w.len() > p.len() + 2 && w.starts_with(p) {
            out.push(rest(p.len()));
        }
    }
    // be- and te- before r (berumah → rumah is ber-; beranak → anak), bel-/pel- before ajar.
    if w.starts_with("belajar") || w.starts_with("pelajar") {
        out.push(rest(3));
    }
    if (w.starts_with("be") || w.starts_with("te") || w.starts_with("pe")) && at(2) == b'r' {
        out.push(rest(2));
    }
    // me- and pe- with the nasal recoding.
    for head in ["me", "pe"] {
        if !w.starts_with(head) || w.len() < 5 {
            continue;
        }
        let tail = &w[2..];
        let tb = tail.as_bytes();
        let t = |i: usize| tb.get(i).copied().unwrap_or(0);
        if let Some(r) = tail.strip_prefix("ng") {
            if is_vowel(t(2)) {
                out.push(r.to_owned());
                out.push(format!("k{r}"));
            } else {
                out.push(r.to_owned());
            }
        } else if let Some(r) = tail.strip_prefix("ny") {
            out.push(format!("s{r}"));
            out.push(format!("ny{r}"));
        } else if let Some(r) = tail.strip_prefix('m') {
            if is_vowel(t(1)) {
                out.push(format!("p{r}"));
                out.push(format!("m{r}"));
            } else {
                // mem- before b, f, p, v: membuang → buang, memperbaiki → perbaiki.
                out.push(r.to_owned());
            }
        } else if let Some(r) = tail.strip_prefix('n') {
            if is_vowel(t(1)) {
                out.push(format!("t{r}"));
                out.push(format!("n{r}"));
            } else {
                // men- before c, d, j, s, z: mencari → cari.
                out.push(r.to_owned());
            }
        } else if matches!(t(0), b'l' | b'r' | b'w' | b'y') {
            out.push(tail.to_owned());
        } else if head == "pe" {
            // pe- before other consonants: pekerja → kerja, petani → tani.
            out.push(tail.to_owned());
        }
    }
    // The colloquial bare nasal: numpuk → tumpuk, nyapu → sapu, ngirim → kirim, mbuang.
    if w.len() >= 5 {
        if let Some(r) = w.strip_prefix("ng") {
            out.push(format!("k{r}"));
            out.push(r.to_owned());
        } else if let Some(r) = w.strip_prefix("ny") {
            out.push(format!("s{r}"));
        } else if let Some(r) = w.strip_prefix('n') {
            if is_vowel(at(1)) {
                out.push(format!("t{r}"));
            }
        } else if let Some(r) = w.strip_prefix('m') {
            if is_vowel(at(1)) {
                out.push(format!("p{r}"));
            } else if at(1) == b'b' {
                out.push(r.to_owned());
            }
        }
    }
    out
}

/// The root reached by removing up to `depth` prefixes from `w` (breadth first: the
/// fewest removals win), trying each candidate with and without a derivational suffix.
fn prefixes_to_root(w: &str, depth: usize) -> Option<String> {
    let mut level = vec![w.to_owned()];
    for _ in 0..depth {
        let mut next = Vec::new();
        for x in &level {
            for c in strip_one_prefix(x) {
                if is_root(&c) {
                    return Some(c);
                }
                for s in DERIVATIONAL {
                    if let Some(r) = c.strip_suffix(s)
                        && r.len() >= 3
                        && is_root(r)
                    {
                        return Some(r.to_owned());
                    }
                }
                next.push(c);
            }
        }
        if next.is_empty() {
            break;
        }
        level = next;
    }
    None
}

/// `w` without `suffix` when at least `keep` letters stay.
fn strip<'a>(w: &'a str, suffixes: &[&str], keep: usize) -> Option<&'a str> {
    suffixes.iter().find_map(|s| w.strip_suffix(s).filter(|r| r.len() >= keep))
}

/// The stem of one lower-case word (see the module docs).
pub fn stem(word: &str) -> String {
    let mut w = word;
    // Reduplication: jalan-jalan, lampu2.
    if let Some((a, _)) = w.split_once('-') {
        w = a;
    }
    if w.len() > 3
        && let Some(a) = w.strip_suffix('2')
        && a.bytes().all(|c| c.is_ascii_alphabetic())
    {
        w = a;
    }
    if w.len() <= 3 || is_root(w) || !w.bytes().all(|c| c.is_ascii_lowercase()) {
        return w.to_owned();
    }
    // Suffixes, checking for a root after each.
    let mut forms = vec![w];
    let mut cur = w;
    for (table, keep) in [(PARTICLES, 3), (POSSESSIVES, 3), (DERIVATIONAL, 3)] {
        if let Some(r) = strip(cur, table, keep) {
            if is_root(r) {
                return r.to_owned();
            }
            cur = r;
            forms.push(r);
        }
    }
    // Prefixes, from the most stripped form back to the whole word.
    for f in forms.iter().rev() {
        if let Some(r) = prefixes_to_root(f, 3) {
            return r;
        }
    }
    light(w)
}

/// The fallback for a word that leads to no root: particle and possessive, one
/// derivational suffix and one plain prefix, each only when four letters stay.
fn light(w: &str) -> String {
    let mut w = w;
    if let Some(r) = strip(w, PARTICLES, 4) {
        w = r;
    }
    if let Some(r) = strip(w, POSSESSIVES, 4) {
        w = r;
    }
    if let Some(r) = strip(w, DERIVATIONAL, 4) {
        w = r;
    }
    for p in PREFIXES {
        // Only when a syllable starts the rest: `dinkes` keeps its `di`.
        if let Some(r) =
            w.strip_prefix(p).filter(|r| r.len() >= 4 && r.bytes().take(2).any(is_vowel))
        {
            return r.to_owned();
        }
    }
    w.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (word, stem): affixes as residents write them, and the traps of over-stemming.
    const CASES: &[(&str, &str)] = &[
        // Roots stay roots.
        ("jalan", "jalan"),
        ("lampu", "lampu"),
        ("mati", "mati"),
        ("sekolah", "sekolah"),
        ("selokan", "selokan"),
        ("jembatan", "jembatan"),
        ("sampah", "sampah"),
        ("bau", "bau"),
        ("desa", "desa"),
        ("tutup", "tutup"),
        ("pasar", "pasar"),
        ("kali", "kali"),
        ("sapi", "sapi"),
        ("keluarga", "keluarga"),
        ("kantor", "kantor"),
        // Suffixes, particles and possessives.
        ("baunya", "bau"),
        ("sampahnya", "sampah"),
        ("lampunya", "lampu"),
        ("jalannya", "jalan"),
        ("bantuan", "bantu"),
        ("jalanan", "jalan"),
        ("tagihan", "tagih"),
        ("pungutan", "pungut"),
        ("genangan", "genang"),
        ("saluran", "salur"),
        ("rumahku", "rumah"),
        ("tolonglah", "tolong"),
        ("benarkah", "benar"),
        ("bagaimanapun", "bagaimana"),
        // Confixes and prefixes.
        ("perbaikan", "baik"),
        ("perbaikannya", "baik"),
        ("diperbaiki", "baik"),
        ("memperbaiki", "baik"),
        ("berlubang", "lubang"),
        ("pelayanan", "layan"),
        ("kerusakan", "rusak"),
        ("kebersihan", "bersih"),
        ("kesehatan", "sehat"),
        ("kependudukan", "duduk"),
        ("pencatatan", "catat"),
        ("perumahan", "rumah"),
        ("pemukiman", "mukim"),
        ("permukiman", "mukim"),
        ("penerangan", "terang"),
        ("pengaspalan", "aspal"),
        ("diangkut", "angkut"),
        ("terlambat", "lambat"),
        ("tersumbat", "sumbat"),
        ("kebanjiran", "banjir"),
        ("kebakaran", "bakar"),
        ("petugas", "tugas"),
        ("pekerjaan", "kerja"),
        ("petani", "tani"),
        ("pedagang", "dagang"),
        ("belajar", "ajar"),
        ("bertahun", "tahun"),
        ("seminggu", "minggu"),
        ("ketinggian", "tinggi"),
        // Nasal recoding.
        ("menyapu", "sapu"),
        ("memukul", "pukul"),
        ("menulis", "tulis"),
        ("mengirim", "kirim"),
        ("membuang", "buang"),
        ("mencari", "cari"),
        ("melapor", "lapor"),
        ("melaporkan", "lapor"),
        ("merusak", "rusak"),
        ("menggali", "gali"),
        ("mengambil", "ambil"),
        ("penulisan", "tulis"),
        ("pengiriman", "kirim"),
        ("penyaluran", "salur"),
        ("pemotongan", "potong"),
        ("menyala", "nyala"),
        // Colloquial forms.
        ("numpuk", "tumpuk"),
        ("nyapu", "sapu"),
        ("ngirim", "kirim"),
        ("benerin", "bener"),
        ("diangkutin", "angkut"),
        // Reduplication.
        ("jalan-jalan", "jalan"),
        ("lampu2", "lampu"),
        ("rumah-rumah", "rumah"),
        // Unknown words are stripped lightly, the same way in keywords and text.
        ("drainase", "drainase"),
        ("drainasenya", "drainase"),
        ("puskesmas", "puskesmas"),
        ("ktp", "ktp"),
        ("dinkes", "dinkes"),
        ("kades", "kades"),
        ("pdam", "pdam"),
    ];

    #[test]
    fn table() {
        let wrong: Vec<String> = CASES
            .iter()
            .filter(|(w, want)| stem(w) != *want)
            .map(|(w, want)| format!("{w}: got {}, want {want}", stem(w)))
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        assert!(CASES.len() >= 60);
    }

    #[test]
    fn stems_are_idempotent_on_the_table() {
        for (_, s) in CASES {
            assert_eq!(stem(s), *s, "stem of the stem {s}");
        }
    }
}
