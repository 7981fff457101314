"""Write the corpus the shipped tiny model learns from: short children's stories produced by a
seeded grammar. Written for this project and dedicated to the public domain (CC0 1.0), so the
text, the model trained on it and its held-out evaluation set have no licence question.

    python scripts/make_corpus.py --stories 6000 --seed 0 --out /tmp/train.txt     # training text
    python scripts/make_corpus.py --stories 200 --seed 1 \
        --out mlflow_energy/inference/data/heldout.txt                           # the shipped held-out text

Different seeds give disjoint samples of the same language, which is what a held-out set needs.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

NAMES = ["Tom", "Lily", "Sam", "Mia", "Ben", "Anna", "Max", "Lucy", "Leo", "Emma", "Jack", "Zoe", "Finn", "Rosa",
         "Noah", "Ella", "Omar", "Ivy", "Theo", "Nina"]  # fmt: skip
ANIMALS = ["cat", "dog", "rabbit", "bird", "fox", "frog", "bear", "duck", "mouse", "owl", "turtle", "horse"]
PLACES = ["park", "garden", "forest", "beach", "farm", "river", "hill", "village", "school", "kitchen", "library",
          "meadow", "lake", "market"]  # fmt: skip
THINGS = ["ball", "kite", "box", "hat", "book", "cake", "boat", "flower", "shell", "key", "drum", "lamp", "map",
          "basket", "stone", "apple", "bell", "blanket"]  # fmt: skip
COLOURS = ["red", "blue", "green", "yellow", "little", "big", "shiny", "old", "soft", "tiny", "bright", "funny"]
FEELINGS = ["happy", "sad", "scared", "excited", "tired", "proud", "curious", "angry", "calm", "surprised"]
WEATHER = ["sunny", "rainy", "windy", "cold", "warm", "quiet", "cloudy", "snowy"]
VERBS = ["found", "lost", "saw", "made", "painted", "carried", "shared", "hid", "fixed", "dropped", "washed", "wanted"]
GAMES = ["played tag", "built a tower", "sang a song", "read a story", "ran a race", "drew a picture",
         "looked for bugs", "made a sandcastle", "counted the clouds", "danced in a circle"]  # fmt: skip
LESSONS = ["It is good to share.", "Friends help each other.", "Being kind makes everyone happy.",
           "It is okay to ask for help.", "Trying again is brave.", "Saying sorry can fix a lot.",
           "Small things can be very special.", "Listening is a kind of magic."]  # fmt: skip


def a(word: str) -> str:
    """``a`` or ``an``, as the next word needs."""
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def story(rng: random.Random) -> str:
    first, b = rng.sample(NAMES, 2)
    animal, place, thing = rng.choice(ANIMALS), rng.choice(PLACES), rng.choice(THINGS)
    colour, feeling, weather = rng.choice(COLOURS), rng.choice(FEELINGS), rng.choice(WEATHER)
    he = rng.choice(["he", "she"])
    openings = [
        f"Once upon a time, there was {a(colour)} {animal} named {first}.",
        f"One {weather} day, {first} went to the {place}.",
        f"{first} lived near a {place} with {a(colour)} {animal}.",
        f"There was a {place}, and in the {place} there was {a(colour)} {thing}.",
    ]
    middles = [
        f"{first} {rng.choice(VERBS)} {a(colour)} {thing} and felt {feeling}.",
        f"{first} met {b} by the {place}. They {rng.choice(GAMES)} together.",
        f"The {animal} said, \"Can I play with your {thing}?\" {first} said, \"Yes, you can.\"",
        f"Then the wind blew the {thing} away. {first} was {rng.choice(FEELINGS)}.",
        f"{b} came to help. {b} {rng.choice(VERBS)} the {thing} under a tree.",
        f"\"Look!\" said {b}. \"The {thing} is {colour}!\" {first} smiled.",
        f"It was {weather}, so {he} put on {a(colour)} hat and went to the {rng.choice(PLACES)}.",
        f"{first} and the {animal} {rng.choice(GAMES)} until the sun went down.",
    ]
    endings = [
        f"At the end of the day, {first} went home and felt {rng.choice(FEELINGS)}.",
        f"{first} and {b} were friends forever.",
        f"The {animal} gave {first} a big hug. {rng.choice(LESSONS)}",
        f"{first} learned something new that day. {rng.choice(LESSONS)}",
        f"They all had {rng.choice(['cake', 'soup', 'apples', 'bread'])} for dinner, and then they went to sleep.",
    ]
    body = rng.sample(middles, rng.randint(2, 4))
    return " ".join([rng.choice(openings), *body, rng.choice(endings)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stories", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    args.out.write_text("\n".join(story(rng) for _ in range(args.stories)) + "\n")
    print(f"wrote {args.stories} stories to {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
