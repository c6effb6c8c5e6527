"""Demo text emotion corpora, each in its source's exact file names and format, quirks included.

Small synthetic corpora (sentences composed from per-emotion phrase banks) for the five text
sources, so `emostore demo` runs every text adapter:

- crowdflower/text_emotion.csv: `tweet_id,sentiment,author,content`, all 13 labels, HTML entities
  and quoted commas in the tweets;
- saravia/{train,val,test}.txt: `text;label`, lower case, `val.txt` opens with a blank line;
- goemotions/original/{train,dev,test}.tsv + labels.txt (28 names, no final newline) and
  ekman_mapping.json: `text<TAB>label ids<TAB>comment id`, multi-label rows within and across
  Ekman groups, `[NAME]` placeholders;
- isear/isear.csv: the 43 `|`-separated header fields, `á` line-break marks, rows with an extra `|`
  inside SIT, a "[ No response.]" answer;
- semeval_ei_reg/2018-EI-reg-En-<emotion>-<split>.txt: CRLF line ends, test intensities `NONE`,
  tweets in two emotion files, a literal `\\n` in a tweet.
"""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

from storage.labels import GOEMOTIONS_EKMAN, GOEMOTIONS_LABELS

CORPORA = ("crowdflower", "saravia", "goemotions", "isear", "semeval_ei_reg")

# emotion -> (how it feels, what caused it); the causes read as past events.
PHRASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "anger": (("furious", "angry", "outraged", "livid", "fed up"),
              ("my landlord ignored every call about the broken heater", "someone keyed my car in the parking lot",
               "the referee gave them a penalty they never earned", "the airline cancelled my flight and blamed me",
               "my coworker took credit for my project")),
    "disgust": (("disgusted", "grossed out", "repulsed", "sickened", "nauseated"),
                ("the fridge at work was full of rotten meat", "a man spat on the floor of the bus",
                 "I found a hair baked into my sandwich", "the station toilets were smeared with filth",
                 "the politician lied about the flood victims to win votes")),
    "fear": (("terrified", "scared", "afraid", "frightened", "panicked"),
             ("a car nearly hit me on the crossing", "I heard footsteps following me home at night",
              "the plane dropped suddenly in the storm", "a large dog ran at me snarling",
              "the doctor called me back about my scan")),
    "joy": (("happy", "delighted", "thrilled", "overjoyed", "glad"),
            ("I passed my final exam with honours", "my sister had a healthy baby girl",
             "we won the cup final in extra time", "I got the job offer I wanted",
             "my old friends threw me a birthday picnic")),
    "neutral": (("", "", "", "", ""),
                ("the meeting moved to three o'clock", "the bus to the centre leaves every ten minutes",
                 "the report is saved on the shared drive", "we need milk and bread for tomorrow",
                 "the library closes at six on weekdays")),
    "sadness": (("sad", "heartbroken", "miserable", "down", "lonely"),
                ("my grandmother passed away last winter", "my best friend moved abroad for good",
                 "our old dog died this morning", "nobody came to my graduation",
                 "I had to leave the house I grew up in")),
    "surprise": (("surprised", "shocked", "amazed", "astonished", "stunned"),
                 ("my parents showed up at my door unannounced", "the quiet kid won the talent show",
                  "it snowed in the middle of May", "the shop refunded me without my asking",
                  "my brother announced he was getting married next week")),
    "love": (("in love", "so loved", "adored", "cherished", "tender"),
             ("my partner cooked dinner for me after a long shift", "my daughter drew a picture of us",
              "he held my hand all through the film", "she wrote me a letter every day of the trip",
              "my grandparents still dance in the kitchen")),
    "worry": (("worried", "anxious", "uneasy", "on edge", "restless"),
              ("the rent is due on friday and I am short", "my mother has not answered her phone",
               "the exam results come out tomorrow", "the company is cutting jobs next month",
               "my son is driving through the snow tonight")),
    "shame": (("ashamed", "humiliated", "embarrassed", "mortified", "small"),
              ("I was caught copying answers in the exam", "I fell over on stage in front of the school",
               "my boss read my rude message aloud", "I forgot my best friend's wedding speech",
               "I was sent home for arriving drunk")),
    "guilt": (("guilty", "remorseful", "sorry", "regretful", "to blame"),
              ("I lied to my parents about where I was", "I broke my neighbour's window and kept quiet",
               "I forgot to visit my grandfather in hospital", "I shouted at my little brother for nothing",
               "I let a friend take the blame for me")),
    "fun": (("having a blast", "cracking up", "having fun", "laughing", "in a silly mood"),
            ("we played water balloons in the garden", "the karaoke night went on till two",
             "we built a snowman with a traffic cone hat", "the comedy show had us in tears",
             "we raced shopping trolleys in the car park")),
    "enthusiasm": (("so excited", "pumped", "eager", "fired up", "ready"),
                   ("the concert tickets go on sale tomorrow", "our road trip starts on saturday",
                    "the new season starts tonight", "I start my dream course next week",
                    "we open the bakery on monday")),
    "relief": (("relieved", "so relieved", "at ease", "calm again", "lighter"),
               ("the biopsy came back clear", "the lost cat came home", "the exam is finally over",
                "the flight landed safely after the delay", "my brother called to say he is fine")),
    "empty": (("empty", "numb", "hollow", "blank", "flat"),
              ("another day went by with nothing", "the house is silent again", "the weekend is over",
               "nobody texted back", "I stared at the ceiling all afternoon")),
    "boredom": (("bored", "so bored", "restless", "dull", "tired of this"),
                ("the lecture went on for three hours", "it rained all day and there was nothing on tv",
                 "the queue at the post office never moved", "I have reread the same magazine twice",
                 "the train sat outside the station for an hour")),
}
CROWDFLOWER_LABELS = ("empty", "sadness", "enthusiasm", "neutral", "worry", "surprise", "love", "fun",
                      "hate", "happiness", "boredom", "relief", "anger")
_CROWDFLOWER_SOURCE = {"hate": "anger", "happiness": "joy"}  # labels voiced with another bank
SARAVIA_LABELS = ("sadness", "joy", "love", "anger", "fear", "surprise")
ISEAR_LABELS = ("joy", "fear", "anger", "sadness", "disgust", "shame", "guilt")
SEMEVAL_EMOTIONS = ("anger", "fear", "joy", "sadness")
ISEAR_HEADER = ("ID|CITY|COUN|SUBJ|SEX|AGE|RELI|PRAC|FOCC|MOCC|FIEL|EMOT|WHEN|LONG|INTS|ERGO|TROPHO|"
                "TEMPER|EXPRES|MOVE|EXP1|EXP2|EXP10|PARAL|CON|EXPC|PLEA|PLAN|FAIR|CAUS|COPING|MORL|SELF|"
                "RELA|VERBAL|NEUTRO|Field1|Field3|Field2|MYKEY|SIT|STATE|")
USERS = ("sunnyd", "mike_r", "lola88", "the_real_jen", "bookworm", "gary_k", "kittykat", "dj_max")
# When it happened: varies the sentences so that few repeat once normalized.
WHEN = ("", " today", " this week", " again", " last night", " at the weekend", " after work",
        " on my birthday", " this morning", " twice this month", " on the way home", " in front of everyone")
NEUTRAL_OPENERS = ("fyi", "reminder:", "note that", "just so you know", "update:", "heads up,")


def _feeling(emotion: str, rng: random.Random) -> tuple[str, str]:
    feelings, causes = PHRASES[emotion]
    return rng.choice(feelings), rng.choice(causes) + rng.choice(WHEN)


def tweet(emotion: str, rng: random.Random) -> str:
    feeling, cause = _feeling(emotion, rng)
    if emotion == "neutral":
        return f"@{rng.choice(USERS)} {rng.choice(NEUTRAL_OPENERS)} {cause}"
    opener = rng.choice([f"so {feeling} right now,", f"I'm {feeling} because", f"{feeling}!!"])
    return f"{opener} {cause} #{emotion}"


def saravia_line(emotion: str, rng: random.Random) -> str:
    feeling, cause = _feeling(emotion, rng)
    text = f"i feel {feeling} {rng.choice(['since', 'because', 'now that', 'when i remember'])} {cause}"
    return text.lower().replace("'", " ").replace(",", "")


def reddit_comment(group: str, rng: random.Random) -> str:
    feeling, cause = _feeling(group, rng)
    if group == "neutral":
        return f"{rng.choice(['Apparently', 'I read that', 'Someone said', 'FYI'])} {cause}."
    who = rng.choice(["[NAME]", "My buddy", "Honestly I"])
    return f"{who} {'was' if who != 'Honestly I' else 'am'} {feeling} when {cause}."


def isear_situation(emotion: str, rng: random.Random) -> str:
    feeling, cause = _feeling(emotion, rng)
    return f"When {cause}, I felt {feeling}. á It stayed with me for a while."


def _csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def write_crowdflower(root: Path, rng: random.Random) -> None:
    rows = [["tweet_id", "sentiment", "author", "content"]]
    for n in range(78):
        label = CROWDFLOWER_LABELS[n % len(CROWDFLOWER_LABELS)]
        text = tweet(_CROWDFLOWER_SOURCE.get(label, label), rng)
        if n % 9 == 0:
            text = text.replace(" because", " &amp; because").replace("!!", " &quot;!!&quot;")
        if n % 7 == 0:
            text += ", honestly, you know"  # commas inside a quoted field
        rows.append([str(1956967341 + 173 * n), label, rng.choice(USERS), text])
    (root / "text_emotion.csv").write_text(_csv_text(rows), encoding="utf-8")


def write_saravia(root: Path, rng: random.Random) -> None:
    for name, count in (("train.txt", 60), ("val.txt", 18), ("test.txt", 18)):
        lines = [f"{saravia_line(label, rng)};{label}"
                 for label in (SARAVIA_LABELS[i % len(SARAVIA_LABELS)] for i in range(count))]
        blank = "\n" if name == "val.txt" else ""  # the published val.txt opens with a blank line
        (root / name).write_text(blank + "\n".join(lines) + "\n", encoding="utf-8")


def write_goemotions(root: Path, rng: random.Random) -> None:
    folder = root / "original"
    folder.mkdir(parents=True)
    index = {name: i for i, name in enumerate(GOEMOTIONS_LABELS)}
    groups = list(GOEMOTIONS_EKMAN)
    for split, count in (("train", 70), ("dev", 21), ("test", 21)):
        lines = []
        for n in range(count):
            group = groups[n % len(groups)]
            fine = rng.sample(GOEMOTIONS_EKMAN[group], k=min(2, len(GOEMOTIONS_EKMAN[group])))
            labels = fine[:1]
            if n % 5 == 1 and len(fine) > 1:
                labels = fine  # two labels of one Ekman group: still one emotion
            elif n % 11 == 3:
                labels = [fine[0], GOEMOTIONS_EKMAN[groups[(n + 3) % len(groups)]][0]]  # across groups
            ids = ",".join(str(index[label]) for label in labels)
            lines.append(f"{reddit_comment(group, rng)}\t{ids}\te{split[0]}{n:05x}{rng.randrange(16**3):03x}")
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "labels.txt").write_text("\n".join(GOEMOTIONS_LABELS), encoding="utf-8")
    mapping = {g: list(labels) for g, labels in GOEMOTIONS_EKMAN.items() if g != "neutral"}
    (root / "ekman_mapping.json").write_text(json.dumps(mapping, indent=0), encoding="utf-8")


def write_isear(root: Path, rng: random.Random) -> None:
    lines = [ISEAR_HEADER]
    for n in range(42):
        label = ISEAR_LABELS[n % len(ISEAR_LABELS)]
        emot = ISEAR_LABELS.index(label) + 1
        subject = 11001 + n // len(ISEAR_LABELS)
        text = isear_situation(label, rng)
        if n == 9:
            text = "[ No response.]"
        if n in (4, 23):
            text = text.replace("á It", "á|It")  # the extra '|' of 163 real rows
        numbers = [str(rng.randint(0, 4)) for _ in range(35)]
        numbers[10] = str(emot)  # EMOT, the 12th field
        key = f"0{subject}{emot}"
        lines.append("|".join([str(subject), *numbers, label, "3", "2", key, text, "1", ""]))
    (root / "isear.csv").write_text("\n".join(lines), encoding="utf-8")  # no final newline, as published


def write_semeval(root: Path, rng: random.Random) -> None:
    header = "ID\tTweet\tAffect Dimension\tIntensity Score"
    shared = {split: tweet("anger", rng) for split in ("train", "dev")}  # in the anger and fear files
    for split, count in (("train", 14), ("dev", 6), ("test", 6)):
        year = "2017" if split == "train" else "2018"
        for e_index, emotion in enumerate(SEMEVAL_EMOTIONS):
            lines = [header]
            for n in range(count):
                number = (e_index + 1) * 10000 + n if split == "train" else 100 * e_index + n + (5000 if split == "test" else 0)
                text = tweet(emotion, rng)
                if n == 2 and emotion == "joy":
                    text += "\\n\\nbest day of the year"  # a literal \n, as in the data
                score = "NONE" if split == "test" else f"{rng.uniform(0.05, 0.98):.3f}"
                lines.append(f"{year}-En-{number:05d}\t{text}\t{emotion}\t{score}")
            if split in shared and emotion in ("anger", "fear"):
                # train: counts once, as anger (the fear row is a duplicate); dev: a tie, ambiguous
                score = {"train": {"anger": "0.812", "fear": "0.655"}, "dev": {"anger": "0.600", "fear": "0.600"}}[split][emotion]
                lines.append(f"{year}-En-09999\t{shared[split]}\t{emotion}\t{score}")
            path = root / f"2018-EI-reg-En-{emotion}-{split}.txt"
            path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))


WRITERS = {
    "crowdflower": write_crowdflower,
    "saravia": write_saravia,
    "goemotions": write_goemotions,
    "isear": write_isear,
    "semeval_ei_reg": write_semeval,
}


def write(root: Path, seed: int) -> None:
    """Write the five demo text corpora under `root/<name>`; the same seed writes the same bytes."""
    for index, (name, writer) in enumerate(WRITERS.items()):
        target = root / name
        target.mkdir(parents=True, exist_ok=True)
        writer(target, random.Random(seed * 1000 + index))
