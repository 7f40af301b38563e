"""Real prose for the encoding and Russian-document tests (issue 18 item 3), written for
Longread: a few paragraphs of Russian, and a paragraph each of Polish, Czech and French.

``RUSSIAN`` keeps the em dash and the letter ё; ``RUSSIAN_8BIT`` is the same text with a
hyphen for the dash, which koi8-r, cp866 and iso8859-5 do not have.
"""

RUSSIAN = """Осенью тысяча девятьсот восемьдесят шестого года в маленьком портовом городе на севере открылась первая общественная библиотека. Её основал бывший капитан дальнего плавания Пётр Ильич Воронцов, который за тридцать лет службы собрал больше четырёх тысяч книг. Он привозил их из каждого рейса: старые атласы из Лиссабона, сборники стихов из Риги, учебники навигации из Гамбурга.

Первое время читателей было немного. Рыбаки заходили погреться, листали журналы и уходили, не взяв ни одной книги. Тогда Воронцов придумал простое правило: каждый, кто приносит в библиотеку историю о море, получает право унести домой любую книгу на целую неделю. Уже через месяц на полках не осталось свободного места, а в толстой тетради у входа появились сотни записей.

Эти записи сохранились до наших дней. В них рассказывается о штормах и о штиле, о чужих портах и о долгом ожидании на берегу. Одна женщина написала, что её муж вернулся из плавания ровно через год и один день, и с тех пор она каждую весну печёт пирог с черникой. Другой читатель, мальчик двенадцати лет, нарисовал на полях карту острова, которого не существует, и подробно объяснил, где на нём спрятан клад.

Сегодня библиотека носит имя своего основателя. Тетради хранятся в застеклённом шкафу, а правило по-прежнему действует: расскажите историю — и берите книгу."""
POLISH = """Biblioteka w naszym mieście została otwarta jesienią, kiedy żeglarze wrócili z długiego rejsu. Każdy, kto przyniósł opowieść o morzu, mógł zabrać do domu dowolną książkę na cały tydzień. Już po miesiącu na półkach zabrakło miejsca, a w grubym zeszycie przy wejściu pojawiły się setki wpisów o sztormach, ciszy i długim oczekiwaniu na brzegu."""
CZECH = """Knihovna v našem přístavním městě byla otevřena na podzim, když se námořníci vrátili z dlouhé plavby. Každý, kdo přinesl příběh o moři, si mohl odnést domů libovolnou knihu na celý týden. Už po měsíci nebylo na policích volné místo a v tlusté sešitě u vchodu se objevily stovky záznamů o bouřích, bezvětří a dlouhém čekání na břehu."""
FRENCH = """La bibliothèque de notre petite ville portuaire a ouvert ses portes à l'automne, quand les marins sont rentrés d'un long voyage. Chacun pouvait emporter un livre pendant une semaine entière, à condition d'apporter une histoire de mer. Après un mois, il n'y avait plus de place sur les étagères, et le cahier à l'entrée était rempli de récits de tempêtes et d'attente sur le rivage."""
RUSSIAN_8BIT = RUSSIAN.replace("—", "-")
