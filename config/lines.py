"""Everything the agent says that is not the language model's own words, in one place a shop
can read and reword. `{shop}` is SHOP_NAME; other `{names}` are filled in where each is used.
"""

from __future__ import annotations

# --- answering ---------------------------------------------------------------------------

GREETING_UNKNOWN = "Thanks for calling {shop}, this is the virtual service assistant. How can I help?"
GREETING_UPCOMING = ("Hi {name}, thanks for calling {shop}. I see your {service} on {when}."
                     " Are you calling about that?")
GREETING_ONE_CAR = "Hi {name}, thanks for calling {shop}. Calling about the {car}?"
GREETING_KNOWN = "Hi {name}, thanks for calling {shop}. How can I help today?"
REMINDER_GREETING = ("Hi {name}, this is {shop} with a reminder of your {service}{car} on {when}."
                     " Can you still make it?")
REMINDER_CAR = " for your {car}"
REMINDER_KEYS = " You can also press 1 to confirm, 2 to move it, or 3 to speak with someone."
NAMELESS = "there"  # in a reminder greeting, for a customer whose name is not on file

# --- when the agent cannot take the call -------------------------------------------------

UNAVAILABLE = "Sorry, our phone assistant is not available right now."
BUSY = "Thanks for calling {shop}. All of our lines are busy right now."
TO_THE_DESK = " Let me connect you with a service advisor."
CALL_BACK_LATER = " Please call us back in a few minutes. Thank you, goodbye."

# --- when the agent's voice fails --------------------------------------------------------

# Played from a clip recorded in advance (pipeline/clip_audio/, remade by its make_clips.py
# after a change) when the greeting's text-to-speech fails: no shop name, so one clip fits all.
GREETING_FALLBACK = "Thanks for calling, this is the virtual service assistant. How can I help?"
# Said (through text-to-speech, else from its clip) when speech-to-text or text-to-speech is
# lost for good; then Twilio says TO_THE_DESK and dials the desk, or CALL_BACK_LATER.
LINE_TROUBLE = "I'm sorry, I'm having trouble with this line."

# --- during the call ---------------------------------------------------------------------

# Said once per caller turn while nothing else is on its way, LLM_FILLER_SECONDS after the caller's
# turn ended or a tool started: by the tool's name while one runs, else FILLER. FILLER is also
# played from a clip (pipeline/clip_audio/, remade by its make_clips.py after a change) when
# the agent's words do not start playing within TTS_FILLER_SECONDS.
FILLERS = {
    "check_availability": "One moment, I'm checking the schedule.",
    "book_appointment": "One moment while I book that.",
}
FILLER = "One moment, please."
APOLOGY = ("I'm sorry, I'm having trouble reaching our scheduling system right now. "
           "I can transfer you to a service advisor, or you can call back a little later.")
# Said at once when a tool finds the shop's system (the database) down; the model then offers to
# take a message for an advisor to call back.
SYSTEM_DOWN = "I'm sorry, our system is down at the moment, so I can't do that right now."
# Said when the language model failed to answer, after its one retry; the offer is a question, so
# the caller's "yes" is the next turn.
MODEL_APOLOGY = ("I'm sorry, I'm having trouble on my end right now. "
                 "Would you like me to transfer you to a service advisor?")
# The language model failed again on the next turn: then TO_THE_DESK or CALL_BACK_LATER, and
# the call is handed on.
MODEL_LOST = "I'm sorry, I'm still having trouble on my end."
# Said one by one after IDLE_REPROMPT_SECONDS of silence each; then GIVE_UP, and the call ends.
REPROMPTS = ("Are you still there?", "I'm still here if you need anything. Can you hear me?")
GIVE_UP = "I'll let you go. Thanks for calling {shop}."

# --- ending ------------------------------------------------------------------------------

TRANSFERRING = "Sure, I'm connecting you with a service advisor now. Please hold."
# Said while the desk rings (pipeline/handover.py), every few seconds.
STILL_HOLDING = "Thanks for holding, I'm still trying to reach an advisor."
# Nobody at the desk took the call, or it is closed: the caller's answer is the next turn, and
# the model takes the message (take_message).
DESK_NO_ANSWER = ("I'm sorry, none of our service advisors could pick up just now. I can have one"
                  " call you back. Would you like that?")
DESK_CLOSED = ("I'm sorry, our service advisors are not in right now. I can have one call you back."
               " Would you like that?")
# Whispered to the advisor who answers a transfer, before they join the caller: who (first
# name only), which car, what they want, what the agent already did on the call.
WHISPER = "Phone assistant transfer: {who}{car}; reason: {reason}; {done}."
WHISPER_NEW_CALLER = "a caller not on file"
WHISPER_UNVERIFIED = ", caller ID not verified"
WHISPER_CAR = ", about the {car}"
WHISPER_DONE = "on this call I {did}"
WHISPER_NOTHING_DONE = "nothing was done on the call yet"
WHISPER_DID = {
    "booked": "booked {service} for {when}",
    "rescheduled": "moved {service} to {when}",
    "cancelled": "cancelled {service} on {when}",
    "confirmed": "confirmed {service} on {when}",
    "message": "took a message for a call-back",
}
# To an advisor who answers once the caller is no longer waiting for them.
DESK_CALLER_GONE = "Sorry, the caller is no longer waiting. Goodbye."
GOODBYE = "Thanks for calling {shop}. Goodbye!"
# The launcher is shutting down and the call is still going; then TO_THE_DESK or CALL_BACK_LATER.
WRAPPING_UP = "I'm sorry, I have to wrap up our call now."

# --- reminder calls without the agent ----------------------------------------------------

# Left on a machine: no name or service, since anyone may hear it.
VOICEMAIL = "Hello, this is {shop} with a reminder of {about}."
VOICEMAIL_WHEN = "your appointment on {when}"
VOICEMAIL_SOMETIME = "your upcoming appointment"
VOICEMAIL_CALL_BACK = (" To confirm, reschedule or cancel, please call us at {number}."
                       " Again, that is {number}.")
VOICEMAIL_END = " Thank you, goodbye."
NO_LONGER_NEEDED = ("Hello, this is {shop} about a reminder that is no longer needed."
                    " Sorry to bother you, goodbye.")

# --- texts to the customer ---------------------------------------------------------------

# Sent after the agent booked, moved or cancelled an appointment, and after a reminder call
# reached voicemail (telephony/texts.py). {when} is written short: "Tue Dec 8 at 9:30 AM".
TEXT_BOOKED = "{shop}: your {service} is booked for {when}."
TEXT_RESCHEDULED = "{shop}: your {service} has moved to {when}."
TEXT_CANCELLED = "{shop}: your {service} on {when} is cancelled."
TEXT_REMINDER = ("{shop}: a reminder of your {service} on {when}. Call this number to confirm,"
                 " move or cancel it.")
TEXT_ADDRESS = " Find us at {address}."  # SHOP_ADDRESS, when set
TEXT_END = " Reply STOP to opt out."
