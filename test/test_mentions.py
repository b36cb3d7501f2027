"""Which detections a question names: whole descriptions first, then the likeliest category + colour."""
from __future__ import annotations

from spatial_vlm_ros.inference.mentions import Candidate, resolve
from spatial_vlm_ros.inference.types import Detection, SceneResult

BOOK = Candidate("blue book", "book", "blue", {"book": 0.9, "box": 0.1}, {"blue": 0.9, "red": 0.05})
BOX = Candidate("red box", "box", "red", {"box": 0.7, "book": 0.25}, {"red": 0.9, "blue": 0.05})
TABLE = Candidate("white table", "table", "white", {"table": 0.7, "desk": 0.3}, {"white": 0.6, "gray": 0.4})


def test_whole_descriptions_win_and_keep_the_question_order():
    assert resolve("Is the red box on the white table?", [BOOK, BOX, TABLE]) == [1, 2]
    assert resolve("Is the white table under the blue book?", [BOOK, BOX, TABLE]) == [2, 0]


def test_a_phrase_goes_to_the_likeliest_category_and_colour():
    # "red book": the red thing that may be a book beats the book of another colour
    assert resolve("Is the red book on the white table?", [BOOK, BOX, TABLE]) == [1, 2]
    # "gray desk": no desk was named, the table was 30 % desk and 40 % gray
    assert resolve("Is the blue book on the gray desk?", [BOOK, BOX, TABLE]) == [0, 2]
    # two phrases never share a detection
    assert sorted(resolve("Is the red book near the blue box?", [BOOK, BOX])) == [0, 1]


def test_unlikely_or_undecidable_phrases_stay_unresolved():
    assert resolve("Is the green sofa near the blue book?", [BOOK, BOX, TABLE]) == [0]
    mugs = [Candidate("blue mug", "mug", "blue"), Candidate("red mug", "mug", "red")]
    assert resolve("Is the green mug on the table?", mugs) == []  # a coin toss is no answer
    assert resolve("Is the red mug on the table?", mugs) == [1]
    can = Candidate("red can", "can", "red")
    assert resolve("Can the robot reach the red can?", [can]) == [0]
    # a look-alike the detector found at least MIN_CATEGORY_SCORE likely to be a mug stands in for it
    cup = Candidate("red cup", "cup", "red", {"cup": 0.98, "mug": 0.02}, {"red": 0.9})
    assert resolve("Is the red mug on the table?", [cup]) == [0]
    sure = Candidate("red cup", "cup", "red", {"cup": 0.995, "mug": 0.005}, {"red": 0.9})
    assert resolve("Is the red mug on the table?", [sure]) == []
    assert resolve("Can the robot reach it?", [can]) == []


def test_scene_lookup_uses_the_same_rule():
    dets = [Detection(c.description.replace(" ", "_"), c.label, 0.9, (0, 0, 1, 1), c.color, description=c.description,
                      label_scores=dict(c.label_scores), color_scores=dict(c.color_scores)) for c in (BOOK, BOX, TABLE)]
    scene = SceneResult(dets, [], "")
    assert [d.description for d in scene.find("the red book")] == ["red box"]
    assert [d.description for d in scene.find("the gray desk")] == ["white table"]
    assert [d.description for d in scene.find("desk")] == ["white table"]
    assert [d.description for d in scene.find("the blue book")] == ["blue book"]
    assert scene.find("the green sofa") == []
