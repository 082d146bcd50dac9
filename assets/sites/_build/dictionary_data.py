"""Dictionary data: 36 entries with our own short definitions and examples."""

from __future__ import annotations

from common import write_json

# word, part of speech, UK IPA, US IPA, level, [(definition, example)], synonyms, origin
ENTRIES = [
    ("abate", "verb", "/əˈbeɪt/", "/əˈbeɪt/", "C1", [("to become less strong", "The wind abated by the evening."), ("to make something less intense", "Nothing could abate her curiosity.")], ["subside", "ease", "lessen"], "Old French abatre, 'to beat down'"),
    ("brisk", "adjective", "/brɪsk/", "/brɪsk/", "B2", [("quick and full of energy", "We went for a brisk walk before lunch."), ("cold in a pleasant, fresh way", "a brisk autumn morning")], ["lively", "quick", "crisp"], "probably from French brusque"),
    ("candid", "adjective", "/ˈkæn.dɪd/", "/ˈkæn.dɪd/", "C1", [("honest and direct, even when the truth is uncomfortable", "She gave a candid account of the failure.")], ["frank", "open", "blunt"], "Latin candidus, 'white, pure'"),
    ("dwindle", "verb", "/ˈdwɪn.dəl/", "/ˈdwɪn.dəl/", "C1", [("to become gradually smaller in number or amount", "The crowd dwindled as the rain started.")], ["shrink", "decline", "diminish"], "frequentative of dialect dwine, 'to fade'"),
    ("eloquent", "adjective", "/ˈel.ə.kwənt/", "/ˈel.ə.kwənt/", "C1", [("able to speak or write clearly and persuasively", "an eloquent plea for patience")], ["articulate", "fluent", "expressive"], "Latin eloqui, 'to speak out'"),
    ("fathom", "verb", "/ˈfæð.əm/", "/ˈfæð.əm/", "C2", [("to understand something difficult after thinking about it", "I can't fathom why he left.")], ["grasp", "comprehend", "work out"], "Old English fæthm, 'outstretched arms'"),
    ("fathom", "noun", "/ˈfæð.əm/", "/ˈfæð.əm/", "C2", [("a unit for measuring the depth of water, equal to six feet", "The wreck lies at forty fathoms.")], [], "Old English fæthm"),
    ("gregarious", "adjective", "/ɡrɪˈɡeə.ri.əs/", "/ɡrɪˈɡer.i.əs/", "C2", [("enjoying the company of other people", "Our gregarious neighbour knows everyone on the street.")], ["sociable", "outgoing", "convivial"], "Latin grex, 'flock'"),
    ("hinder", "verb", "/ˈhɪn.dər/", "/ˈhɪn.dɚ/", "C1", [("to make it harder for something to happen or progress", "Heavy snow hindered the rescue.")], ["hamper", "obstruct", "impede"], "Old English hindrian"),
    ("immerse", "verb", "/ɪˈmɜːs/", "/ɪˈmɝːs/", "C1", [("to put something completely under a liquid", "Immerse the cloth in warm water."), ("to become completely involved in an activity", "She immersed herself in the archives.")], ["submerge", "absorb", "engross"], "Latin immergere, 'to plunge in'"),
    ("jovial", "adjective", "/ˈdʒəʊ.vi.əl/", "/ˈdʒoʊ.vi.əl/", "C2", [("cheerful and friendly", "a jovial host who laughed at every story")], ["cheerful", "genial", "merry"], "Latin jovialis, 'of Jupiter'"),
    ("keen", "adjective", "/kiːn/", "/kiːn/", "B1", [("very interested or eager", "He is keen to start the new job."), ("sharp or highly developed", "Owls have keen eyesight.")], ["eager", "enthusiastic", "sharp"], "Old English cene, 'bold'"),
    ("lucid", "adjective", "/ˈluː.sɪd/", "/ˈluː.sɪd/", "C2", [("clearly expressed and easy to understand", "a lucid explanation of the tax rules")], ["clear", "coherent", "plain"], "Latin lucidus, 'bright'"),
    ("meander", "verb", "/miˈæn.dər/", "/miˈæn.dɚ/", "C2", [("to follow a winding course", "The river meanders through the valley."), ("to wander without a clear aim", "We meandered around the market.")], ["wind", "wander", "ramble"], "Greek Maiandros, a winding river in Anatolia"),
    ("nimble", "adjective", "/ˈnɪm.bəl/", "/ˈnɪm.bəl/", "C2", [("quick and light in movement", "nimble fingers working the loom")], ["agile", "deft", "spry"], "Old English næmel, 'quick to seize'"),
    ("obscure", "adjective", "/əbˈskjʊər/", "/əbˈskjʊr/", "C1", [("not well known", "an obscure poet from the last century"), ("hard to understand", "The meaning of the clause is obscure.")], ["little-known", "unclear", "vague"], "Latin obscurus, 'dark'"),
    ("ponder", "verb", "/ˈpɒn.dər/", "/ˈpɑːn.dɚ/", "C1", [("to think carefully about something for a long time", "She pondered the offer overnight.")], ["consider", "contemplate", "mull over"], "Latin ponderare, 'to weigh'"),
    ("quaint", "adjective", "/kweɪnt/", "/kweɪnt/", "C2", [("attractive in an old-fashioned way", "a quaint village with cobbled lanes")], ["charming", "old-world", "picturesque"], "Old French cointe, 'clever, pretty'"),
    ("resilient", "adjective", "/rɪˈzɪl.i.ənt/", "/rɪˈzɪl.jənt/", "C1", [("able to recover quickly from difficulties", "Children are often remarkably resilient."), ("able to return to its shape after bending", "a resilient rubber seal")], ["tough", "hardy", "adaptable"], "Latin resilire, 'to leap back'"),
    ("scrutinise", "verb", "/ˈskruː.tɪ.naɪz/", "/ˈskruː.tən.aɪz/", "C2", [("to examine something very carefully", "Auditors scrutinised every receipt.")], ["examine", "inspect", "study"], "from scrutiny, Latin scrutari, 'to search'"),
    ("tenacious", "adjective", "/təˈneɪ.ʃəs/", "/təˈneɪ.ʃəs/", "C2", [("holding firmly to an aim and not giving up", "a tenacious defender of local libraries")], ["persistent", "determined", "dogged"], "Latin tenax, 'holding fast'"),
    ("ubiquitous", "adjective", "/juːˈbɪk.wɪ.təs/", "/juːˈbɪk.wə.t̬əs/", "C2", [("seeming to be everywhere at once", "Phones have become ubiquitous on trains.")], ["omnipresent", "pervasive", "universal"], "Latin ubique, 'everywhere'"),
    ("vivid", "adjective", "/ˈvɪv.ɪd/", "/ˈvɪv.ɪd/", "B2", [("very bright in colour", "vivid orange sails"), ("producing clear pictures in the mind", "a vivid memory of the storm")], ["bright", "striking", "graphic"], "Latin vividus, 'full of life'"),
    ("wary", "adjective", "/ˈweə.ri/", "/ˈwer.i/", "C1", [("careful because of possible danger or problems", "Be wary of offers that look too good.")], ["cautious", "watchful", "guarded"], "Old English wær, 'aware'"),
    ("yearn", "verb", "/jɜːn/", "/jɝːn/", "C2", [("to want something very much, often something hard to get", "He yearned for the quiet of the coast.")], ["long", "crave", "ache"], "Old English giernan"),
    ("zealous", "adjective", "/ˈzel.əs/", "/ˈzel.əs/", "C2", [("showing great energy for a cause or aim", "a zealous campaigner for clean rivers")], ["fervent", "ardent", "passionate"], "Greek zelos, 'zeal'"),
    ("ledger", "noun", "/ˈledʒ.ər/", "/ˈledʒ.ɚ/", "C2", [("a book or file in which accounts are recorded", "Every sale went into the ledger.")], ["account book", "register", "record"], "Middle English legger, a book that lies in one place"),
    ("harbour", "noun", "/ˈhɑː.bər/", "/ˈhɑːr.bɚ/", "B1", [("a sheltered area of water where ships can stay", "Fishing boats crowded the harbour.")], ["port", "dock", "haven"], "Old English herebeorg, 'lodging'"),
    ("harbour", "verb", "/ˈhɑː.bər/", "/ˈhɑːr.bɚ/", "C2", [("to keep a feeling or thought in your mind for a long time", "She harboured doubts about the plan."), ("to hide or protect someone", "accused of harbouring a fugitive")], ["nurse", "shelter", "conceal"], "Old English herebeorgian"),
    ("lantern", "noun", "/ˈlæn.tən/", "/ˈlæn.tɚn/", "B2", [("a lamp in a case with a handle, often carried", "They found the path by lantern light.")], ["lamp", "light"], "Latin lanterna"),
    ("mellow", "adjective", "/ˈmel.əʊ/", "/ˈmel.oʊ/", "C2", [("soft, warm and pleasant", "the mellow light of late afternoon"), ("relaxed and calm", "He has grown mellow with age.")], ["soft", "smooth", "easy-going"], "Middle English melwe, 'ripe'"),
    ("ramble", "verb", "/ˈræm.bəl/", "/ˈræm.bəl/", "C2", [("to walk for pleasure in the countryside", "We rambled across the moor."), ("to talk for a long time in a confused way", "He rambled on about the old days.")], ["wander", "stroll", "waffle"], "probably Middle Dutch rammelen"),
    ("sparse", "adjective", "/spɑːs/", "/spɑːrs/", "C2", [("small in number or amount and spread out", "sparse vegetation on the hillside")], ["scant", "thin", "scattered"], "Latin sparsus, 'scattered'"),
    ("thrifty", "adjective", "/ˈθrɪf.ti/", "/ˈθrɪf.ti/", "C2", [("careful about spending money and not wasteful", "a thrifty cook who uses every scrap")], ["frugal", "economical", "careful"], "from thrift, Old Norse thrif, 'prosperity'"),
    ("unravel", "verb", "/ʌnˈræv.əl/", "/ʌnˈræv.əl/", "C2", [("to separate twisted threads", "The sleeve began to unravel."), ("to solve something complicated", "Detectives slowly unravelled the mystery.")], ["untangle", "solve", "undo"], "un- + ravel, Dutch rafelen"),
    ("verdant", "adjective", "/ˈvɜː.dənt/", "/ˈvɝː.dənt/", "C2", [("covered with healthy green plants", "verdant hills after the spring rain")], ["green", "lush", "leafy"], "Old French verdoyant, 'becoming green'"),
]
WORD_OF_THE_DAY = "meander"


def build() -> list[dict]:
    entries = []
    for i, (w, pos, uk, us, lvl, senses, syn, origin) in enumerate(ENTRIES):
        entries.append({"id": f"{w}-{pos}", "word": w, "pos": pos, "uk": uk, "us": us, "level": lvl,
                        "senses": [{"def": d, "example": e} for d, e in senses], "synonyms": syn,
                        "origin": origin, "n": i})
    write_json("dictionary", "data.json", {"entries": entries, "word_of_the_day": WORD_OF_THE_DAY})
    write_json("dictionary", "search-index.json", [
        {"title": f"{e['word']} ({e['pos']})", "url": f"/dictionary/entry.html?w={e['word']}",
         "snippet": f"Meaning of {e['word']}: {e['senses'][0]['def']}", "site": "Wordhoard Dictionary"} for e in entries])
    return entries
