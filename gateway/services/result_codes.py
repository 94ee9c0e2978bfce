"""Dialler result codes (jtel's four types: Done, Abort, Delay, Appointment) with their texts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# languagesID -> language; jtel's numbering is not documented, so we state ours: 1 German, 2 English.
LANGUAGES: Final = {1: "de", 2: "en"}
DEFAULT_LANGUAGE: Final = 2


@dataclass(frozen=True, slots=True)
class ResultCode:
    """A result code: its type flags, export key and localized name."""

    id: int
    export_key: str
    done: bool = False
    aborted: bool = False
    delay: bool = False
    appointment: bool = False
    names: tuple[tuple[str, str], ...] = ()

    def to_jtel(self, languages_id: int | None) -> dict[str, object]:
        """The `DiallerCampaignsResultCodes` object, with `Content` in the requested language."""
        lang = LANGUAGES.get(languages_id or DEFAULT_LANGUAGE, "en")
        names = dict(self.names)
        return {
            "ID": self.id,
            "bDone": self.done,
            "bAborted": self.aborted,
            "bDelay": self.delay,
            "bAppointment": self.appointment,
            "ExportKey": self.export_key,
            "Content": names.get(lang, self.export_key),
        }


RESULT_CODES: Final[dict[int, ResultCode]] = {
    c.id: c
    for c in (
        ResultCode(1, "Success (Done)", done=True, names=(("en", "Success"), ("de", "Abgeschlossen"))),
        ResultCode(
            2, "Not Interested (Abort)", aborted=True, names=(("en", "Not interested"), ("de", "Kein Interesse"))
        ),
        ResultCode(3, "Max Tries (Abort)", aborted=True, names=(("en", "Max Tries (Abort)"), ("de", "Max. Versuche"))),
        ResultCode(4, "Do Not Call (Abort)", aborted=True, names=(("en", "Do not call"), ("de", "Nicht anrufen"))),
        ResultCode(5, "Call Back (Delay)", delay=True, names=(("en", "Call back later"), ("de", "Wiederanruf"))),
        ResultCode(6, "Appointment", appointment=True, names=(("en", "Appointment"), ("de", "Termin"))),
        ResultCode(7, "No Answer (Delay)", delay=True, names=(("en", "No answer"), ("de", "Keine Antwort"))),
        ResultCode(8, "Busy (Delay)", delay=True, names=(("en", "Busy"), ("de", "Besetzt"))),
        ResultCode(
            9, "Answering Machine (Delay)", delay=True, names=(("en", "Answering machine"), ("de", "Anrufbeantworter"))
        ),
        ResultCode(10, "Wrong Number (Abort)", aborted=True, names=(("en", "Wrong number"), ("de", "Falsche Nummer"))),
    )
}
