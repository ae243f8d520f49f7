"""The KPI charts on hand-made rows (pandas + matplotlib, no Spark): the last period of the
snapshot is marked as possibly partial, and the charts say what "added" counts."""

import pandas as pd

from netflix_assets.reporting import charts


def _texts(fig) -> str:
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


def test_the_last_month_and_year_are_marked_partial_and_added_is_defined():
    months = pd.DataFrame(
        {"month": ["2021-08", "2021-09", "2021-08", "2021-09"], "type": ["Movie", "Movie", "TV Show", "TV Show"],
         "titles": [90, 12, 40, 5]}
    )
    text = _texts(charts.titles_added_by_month(months))
    assert "2021-09: the data ends in this month, which may be partial" in text
    assert "date_added" in text
    years = pd.DataFrame({"year_added": [2020, 2021, 2020, 2021], "genre": ["Dramas", "Dramas", "Comedies", "Comedies"],
                          "titles": [300, 80, 200, 50]})
    assert "2021: the data ends in this year, which may be partial" in _texts(charts.genre_by_year(years))
    # The hollow last points: one per series, after its line.
    hollow = [line for line in charts.genre_by_year(years).axes[0].lines if line.get_markerfacecolor() == "white"]
    assert len(hollow) == 2
