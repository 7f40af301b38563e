<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="ru">
<context>
    <name>BudgetGauge</name>
    <message>
        <source>full precision, fastest on CPUs</source>
        <translation>полная точность, быстрее всего на CPU</translation>
    </message>
    <message>
        <source>about half the cache; prefill 2-4x slower on CPUs</source>
        <translation>кэш примерно вдвое меньше; чтение документов на CPU в 2–4 раза медленнее</translation>
    </message>
    <message>
        <source>about a quarter of the cache; slowest prefill</source>
        <translation>кэш примерно вчетверо меньше; самое медленное чтение документов</translation>
    </message>
    <message>
        <source>Does it fit?</source>
        <translation>Поместится ли?</translation>
    </message>
    <message>
        <source>Add documents to see whether they fit the model.</source>
        <translation>Добавьте документы, чтобы увидеть, поместятся ли они в модель.</translation>
    </message>
    <message>
        <source>Context window</source>
        <translation>Окно контекста</translation>
    </message>
    <message>
        <source>Memory: model + KV cache + working memory, by cache type</source>
        <translation>Память: модель + KV-кэш + рабочая память, по типу кэша</translation>
    </message>
    <message>
        <source>KV cache {kv_type}: {note}</source>
        <translation>KV-кэш {kv_type}: {note}</translation>
    </message>
    <message>
        <source>Use a larger window</source>
        <translation>Взять окно побольше</translation>
    </message>
    <message>
        <source>Remove documents</source>
        <translation>Убрать документы</translation>
    </message>
    <message>
        <source>Choose another model</source>
        <translation>Выбрать другую модель</translation>
    </message>
    <message>
        <source>Needs flash attention (llama.cpp requires it for a quantized cache)</source>
        <translation>Нужно flash attention (llama.cpp требует его для квантованного кэша)</translation>
    </message>
    <message>
        <source>measured on this machine, reading takes {ratio}x the time of f16.</source>
        <translation>по замерам на этом компьютере чтение идёт в {ratio} раза дольше, чем с f16.</translation>
    </message>
    <message>
        <source>on CPUs that path often reads 2-4x slower than f16 (not measured here yet).</source>
        <translation>на CPU так часто читается в 2–4 раза медленнее, чем с f16 (здесь ещё не измерялось).</translation>
    </message>
    <message>
        <source>{corpus_mark} documents {corpus} tokens  {room_mark} question and answer {room}  = {needed} of {n_ctx} ({percent}%). The server at {server} gives each request up to {max_ctx} tokens.</source>
        <translation>Токены: {corpus_mark} документы — {corpus}  {room_mark} вопрос и ответ — {room}; всего {needed} из {n_ctx} ({percent}%). Сервер {server} даёт каждому запросу до {max_ctx} токенов.</translation>
    </message>
    <message>
        <source>&lt;b&gt;Fits&lt;/b&gt; the server&apos;s window.</source>
        <translation>&lt;b&gt;Помещается&lt;/b&gt; в окно сервера.</translation>
    </message>
    <message>
        <source>&lt;b&gt;Does not fit&lt;/b&gt; the server&apos;s window: fewer or shorter documents, read in waves, or a larger -c on the server.</source>
        <translation>&lt;b&gt;Не помещается&lt;/b&gt; в окно сервера: возьмите меньше документов или документы короче, читайте волнами или увеличьте -c на сервере.</translation>
    </message>
    <message>
        <source>Context window: {n_ctx} tokens</source>
        <translation>Окно контекста, токенов: {n_ctx}</translation>
    </message>
    <message>
        <source>{corpus_mark} documents {corpus} tokens  {room_mark} question and answer {room}  = {needed} of {n_ctx} ({percent}%). The model was trained on windows of up to {max_ctx}.</source>
        <translation>Токены: {corpus_mark} документы — {corpus}  {room_mark} вопрос и ответ — {room}; всего {needed} из {n_ctx} ({percent}%). Модель обучена на окнах длиной до {max_ctx}.</translation>
    </message>
    <message>
        <source>memory {memory}</source>
        <translation>память — {memory}</translation>
    </message>
    <message>
        <source>fits</source>
        <translation>помещается</translation>
    </message>
    <message>
        <source>too big</source>
        <translation>слишком много</translation>
    </message>
    <message>
        <source>, reads in ~{time}</source>
        <translation>, чтение ~{time}</translation>
    </message>
    <message>
        <source>model {weights} + KV cache {kv} for {n_ctx} tokens + working memory {other}; {note}</source>
        <translation>модель {weights} + KV-кэш {kv} (окно {n_ctx}) + рабочая память {other}; {note}</translation>
    </message>
    <message>
        <source>an unknown amount</source>
        <translation>неизвестно сколько</translation>
    </message>
    <message>
        <source>{weights_mark} model {weights}  {kv_mark} KV cache {kv} at {kv_type} ({note})  {other_mark} working memory {other}. This computer has {free} of memory free.</source>
        <translation>{weights_mark} модель {weights}  {kv_mark} KV-кэш {kv} в {kv_type} ({note})  {other_mark} рабочая память {other}. Свободной памяти на этом компьютере: {free}.</translation>
    </message>
    <message>
        <source>Use a {max_ctx}-token window</source>
        <translation>Увеличить окно до {max_ctx}</translation>
    </message>
    <message>
        <source>a larger window (up to {max_ctx})</source>
        <translation>окно побольше (до {max_ctx})</translation>
    </message>
    <message>
        <source>fewer or shorter documents</source>
        <translation>меньше документов или документы короче</translation>
    </message>
    <message>
        <source>a model trained on more than {max_ctx} tokens</source>
        <translation>модель, обученная на окнах длиннее {max_ctx}</translation>
    </message>
    <message>
        <source>reading it in waves: {costs}</source>
        <translation>чтение волнами: {costs}</translation>
    </message>
    <message>
        <source>&lt;b&gt;Does not fit:&lt;/b&gt; the documents need {needed} tokens with the question and answer, the window holds {n_ctx}. Ways out: {ways}.</source>
        <translation>&lt;b&gt;Не помещается:&lt;/b&gt; документам вместе с вопросом и ответом нужно токенов: {needed}, а в окно входит {n_ctx}. Что можно сделать: {ways}.</translation>
    </message>
    <message>
        <source>&lt;b&gt;Not enough memory&lt;/b&gt; at {kv_type}: {needed} needed, {free} free.</source>
        <translation>&lt;b&gt;Не хватает памяти&lt;/b&gt; с кэшем {kv_type}: нужно {needed}, свободно {free}.</translation>
    </message>
    <message>
        <source>Choose {kv_types} below, or use fewer documents or a smaller model.</source>
        <translation>Выберите ниже {kv_types} или возьмите меньше документов либо модель поменьше.</translation>
    </message>
    <message>
        <source> or </source>
        <translation> или </translation>
    </message>
    <message>
        <source>Use fewer documents or a smaller model.</source>
        <translation>Возьмите меньше документов или модель поменьше.</translation>
    </message>
    <message>
        <source>&lt;b&gt;Cannot read:&lt;/b&gt; {why}</source>
        <translation>&lt;b&gt;Прочитать не получится:&lt;/b&gt; {why}</translation>
    </message>
    <message>
        <source>&lt;b&gt;Fits the window, beyond what this model reliably reads&lt;/b&gt; ({measured}): {needed} of {n_ctx} tokens.</source>
        <translation>&lt;b&gt;Помещается в окно, но больше, чем эта модель надёжно читает&lt;/b&gt; ({measured}): токенов {needed} из {n_ctx}.</translation>
    </message>
    <message>
        <source>Better: {waves}.</source>
        <translation>Лучше так: {waves}.</translation>
    </message>
    <message>
        <source>Check important answers against the pages.</source>
        <translation>Важные ответы сверяйте со страницами.</translation>
    </message>
    <message>
        <source>&lt;b&gt;Fits.&lt;/b&gt; {needed} of {n_ctx} tokens; {total} of {free} free memory at {kv_type}.</source>
        <translation>&lt;b&gt;Помещается.&lt;/b&gt; Токенов {needed} из {n_ctx}; памяти {total} из {free} свободных, кэш {kv_type}.</translation>
    </message>
</context>
<context>
    <name>ConversationView</name>
    <message>
        <source>Ask</source>
        <translation>Спросить</translation>
    </message>
    <message>
        <source>Think deeply</source>
        <translation>Подумать основательно</translation>
    </message>
    <message>
        <source>Read in waves</source>
        <translation>Читать волнами</translation>
    </message>
    <message>
        <source>Questions and answers</source>
        <translation>Вопросы и ответы</translation>
    </message>
    <message>
        <source>Ask a question about these documents. Ctrl+Enter asks.</source>
        <translation>Задайте вопрос об этих документах. Ctrl+Enter — спросить.</translation>
    </message>
    <message>
        <source>Answers cite pages like [filing.pdf p.12]: click one to see the page.</source>
        <translation>Ссылки вида [filing.pdf p.12] в ответах открывают страницу.</translation>
    </message>
    <message>
        <source>Cancel (Esc)</source>
        <translation>Отмена (Esc)</translation>
    </message>
    <message>
        <source>Ask (Ctrl+Enter)</source>
        <translation>Спросить (Ctrl+Enter)</translation>
    </message>
    <message>
        <source>Ask: one pass. Think deeply: five stored steps. Read in waves: long documents in parts.</source>
        <translation>Спросить: один проход. Подумать основательно: пять сохраняемых шагов. Читать волнами: длинные документы по частям.</translation>
    </message>
    <message>
        <source>Read in waves ({eta})</source>
        <translation>Читать волнами ({eta})</translation>
    </message>
    <message>
        <source>Read the documents window by window, keeping passages, then answer</source>
        <translation>Прочитать документы окно за окном, сохраняя нужные места, и затем ответить</translation>
    </message>
    <message>
        <source>Getting the model ready…</source>
        <translation>Модель готовится…</translation>
    </message>
    <message>
        <source>Preparing…</source>
        <translation>Подготовка…</translation>
    </message>
    <message>
        <source>Reading the documents: {done} / {total} tokens, {reused} already read</source>
        <translation>Чтение документов, токенов: {done} / {total}, уже прочитано: {reused}</translation>
    </message>
    <message>
        <source>Reading the documents: {done} / {total} tokens</source>
        <translation>Чтение документов, токенов: {done} / {total}</translation>
    </message>
    <message>
        <source>{speed} tokens/s, about {left} left. Esc cancels.</source>
        <translation>{speed} ток/с, осталось около {left}. Esc — отмена.</translation>
    </message>
    <message>
        <source>{progress}. Esc cancels.</source>
        <translation>{progress}. Esc — отмена.</translation>
    </message>
    <message>
        <source>Answering… Esc stops.</source>
        <translation>Пишу ответ… Esc — остановить.</translation>
    </message>
    <message>
        <source>Cancelled.</source>
        <translation>Отменено.</translation>
    </message>
    <message>
        <source>Ask anything about the documents on the left: Longread reads &lt;b&gt;all of them&lt;/b&gt;, every page, before it answers, and cites the pages it used.</source>
        <translation>Спрашивайте что угодно о документах слева: прежде чем ответить, Longread читает &lt;b&gt;их все&lt;/b&gt;, каждую страницу, и ссылается на страницы, которыми воспользовался.</translation>
    </message>
    <message>
        <source>No documents yet. Drop PDFs or folders on this window, or press Ctrl+O. Then ask a question here.</source>
        <translation>Документов пока нет. Перетащите в это окно PDF-файлы или папки либо нажмите Ctrl+O. Затем задайте вопрос здесь.</translation>
    </message>
    <message>
        <source>You:</source>
        <translation>Вы:</translation>
    </message>
    <message>
        <source>Longread:</source>
        <translation>Longread:</translation>
    </message>
    <message>
        <source>reading the documents…</source>
        <translation>читаю документы…</translation>
    </message>
    <message>
        <source>not checked</source>
        <translation>не проверено</translation>
    </message>
    <message>
        <source>Failed.</source>
        <translation>Не удалось.</translation>
    </message>
    <message>
        <source>Unverified: this answer cites no page, so nothing in it was checked against the documents.</source>
        <translation>Не проверено: ответ не ссылается ни на одну страницу, поэтому ничего в нём не сверено с документами.</translation>
    </message>
    <message>
        <source>Cancelled: the answer stops here.</source>
        <translation>Отменено: ответ обрывается здесь.</translation>
    </message>
    <message>
        <source>Interrupted: the answer stops here.</source>
        <translation>Прервано: ответ обрывается здесь.</translation>
    </message>
    <message>
        <source>Read the documents fresh and ask again</source>
        <translation>Прочитать документы заново и спросить ещё раз</translation>
    </message>
    <message>
        <source>the citation names no document</source>
        <translation>в ссылке не указан документ</translation>
    </message>
    <message>
        <source>there is no document called &apos;{name}&apos;</source>
        <translation>документа «{name}» нет</translation>
    </message>
    <message>
        <source>{name} has no page {page} (it has {pages})</source>
        <translation>в {name} нет страницы {page} (всего страниц: {pages})</translation>
    </message>
    <message>
        <source>the quoted words are not on pages {first}-{last} of {name}</source>
        <translation>цитаты нет на страницах {first}–{last} документа {name}</translation>
    </message>
    <message>
        <source>the quoted words are not on page {page} of {name}</source>
        <translation>цитаты нет на странице {page} документа {name}</translation>
    </message>
    <message>
        <source>the quoted words are on no page of the documents</source>
        <translation>этой цитаты нет ни на одной странице документов</translation>
    </message>
    <message>
        <source>this number is on no page of the documents</source>
        <translation>этого числа нет ни на одной странице документов</translation>
    </message>
    <message>
        <source>this date is on no page of the documents</source>
        <translation>этой даты нет ни на одной странице документов</translation>
    </message>
    <message>
        <source>this code is on no page of the documents</source>
        <translation>этого кода нет ни на одной странице документов</translation>
    </message>
    <message>
        <source>Copy answer as Markdown</source>
        <translation>Копировать ответ как Markdown</translation>
    </message>
    <message>
        <source>Copy answer as plain text</source>
        <translation>Копировать ответ как простой текст</translation>
    </message>
    <message>
        <source>restored the documents in {restore} s (reading them took {cold} s)</source>
        <translation>документы восстановлены за {restore} с (чтение заняло {cold} с)</translation>
    </message>
    <message>
        <source>restored the documents in {restore} s</source>
        <translation>документы восстановлены за {restore} с</translation>
    </message>
    <message>
        <source>assembled from {documents} documents&apos; snapshots in {took} s ({tokens} tokens read again)</source>
        <translation>документы ({documents}) собраны из своих снимков за {took} с (заново прочитано токенов: {tokens})</translation>
    </message>
    <message>
        <source> instead of about {cold}</source>
        <translation> вместо примерно {cold}</translation>
    </message>
    <message>
        <source>the documents were already assembled from their snapshots</source>
        <translation>документы уже были собраны из своих снимков</translation>
    </message>
    <message>
        <source>the documents were already read</source>
        <translation>документы уже были прочитаны</translation>
    </message>
    <message>
        <source>read {tokens} tokens in {seconds} s ({speed} tokens/s)</source>
        <translation>прочитано токенов: {tokens} за {seconds} с ({speed} ток/с)</translation>
    </message>
    <message>
        <source>read nothing new</source>
        <translation>нового ничего не прочитано</translation>
    </message>
    <message>
        <source>, {reused} already in memory</source>
        <translation>, уже в памяти: {reused}</translation>
    </message>
    <message>
        <source>{read}; answered {tokens} tokens in {seconds} s.</source>
        <translation>{read}; ответ за {seconds} с, токенов в ответе: {tokens}.</translation>
    </message>
    <message>
        <source>{kind} with {model}.</source>
        <translation>{kind}, модель {model}.</translation>
    </message>
    <message>
        <source>{model}, window {n_ctx}, KV {kv_type}; read {tokens} tokens in {seconds} s.</source>
        <translation>{model}, окно {n_ctx}, KV {kv_type}; прочитано токенов: {tokens} за {seconds} с.</translation>
    </message>
</context>
<context>
    <name>CorpusPanel</name>
    <message>
        <source>Documents</source>
        <translation>Документы</translation>
    </message>
    <message>
        <source>Document</source>
        <translation>Документ</translation>
    </message>
    <message>
        <source>Pages</source>
        <translation>Страниц</translation>
    </message>
    <message>
        <source>Tokens</source>
        <translation>Токенов</translation>
    </message>
    <message>
        <source>Status</source>
        <translation>Состояние</translation>
    </message>
    <message>
        <source>Add…</source>
        <translation>Добавить…</translation>
    </message>
    <message>
        <source>Add documents (Ctrl+O), or drop them on the window</source>
        <translation>Добавить документы (Ctrl+O) или перетащить их в окно</translation>
    </message>
    <message>
        <source>Move up</source>
        <translation>Выше</translation>
    </message>
    <message>
        <source>Read this document earlier (Alt+Up)</source>
        <translation>Читать этот документ раньше (Alt+Вверх)</translation>
    </message>
    <message>
        <source>Move down</source>
        <translation>Ниже</translation>
    </message>
    <message>
        <source>Read this document later (Alt+Down)</source>
        <translation>Читать этот документ позже (Alt+Вниз)</translation>
    </message>
    <message>
        <source>Remove</source>
        <translation>Убрать</translation>
    </message>
    <message>
        <source>Take this document out of the corpus (Delete)</source>
        <translation>Убрать документ из набора (Delete)</translation>
    </message>
    <message>
        <source>Already in the corpus: the same file is listed above.</source>
        <translation>Уже в наборе: этот же файл есть в списке выше.</translation>
    </message>
    <message>
        <source>counting…</source>
        <translation>считаю…</translation>
    </message>
    <message>
        <source>Ready (text pages of ~3,000 characters)</source>
        <translation>Готово (текстовые страницы по ~3000 знаков)</translation>
    </message>
    <message>
        <source>Ready</source>
        <translation>Готово</translation>
    </message>
    <message>
        <source>Text files have no pages: Longread cuts them every ~3,000 characters.</source>
        <translation>В текстовых файлах нет страниц: Longread режет их через каждые ~3000 знаков.</translation>
    </message>
    <message>
        <source>Not added</source>
        <translation>Не добавлен</translation>
    </message>
    <message>
        <source>Double-click to unlock</source>
        <translation>Дважды щёлкните, чтобы открыть</translation>
    </message>
    <message>
        <source>Double-click (or press Enter) to enter it.</source>
        <translation>Дважды щёлкните (или нажмите Enter), чтобы ввести пароль.</translation>
    </message>
    <message>
        <source>Needs a password</source>
        <translation>Нужен пароль</translation>
    </message>
    <message>
        <source>{tokens} tokens</source>
        <translation>токенов: {tokens}</translation>
    </message>
    <message>
        <source>tokens: counting…</source>
        <translation>токены: считаю…</translation>
    </message>
    <message numerus="yes">
        <source>Total: %n document</source>
        <translation>
            <numerusform>Всего: %n документ</numerusform>
            <numerusform>Всего: %n документа</numerusform>
            <numerusform>Всего: %n документов</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>Total: %n documents</source>
        <translation>
            <numerusform>Всего: %n документ</numerusform>
            <numerusform>Всего: %n документа</numerusform>
            <numerusform>Всего: %n документов</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n page</source>
        <translation>
            <numerusform>%n страница</numerusform>
            <numerusform>%n страницы</numerusform>
            <numerusform>%n страниц</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n pages</source>
        <translation>
            <numerusform>%n страница</numerusform>
            <numerusform>%n страницы</numerusform>
            <numerusform>%n страниц</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n still reading</source>
        <translation>
            <numerusform>%n ещё читается</numerusform>
            <numerusform>%n ещё читаются</numerusform>
            <numerusform>%n ещё читаются</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n not added</source>
        <translation>
            <numerusform>%n не добавлен</numerusform>
            <numerusform>%n не добавлены</numerusform>
            <numerusform>%n не добавлено</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n needs a password</source>
        <translation>
            <numerusform>%n требует пароля</numerusform>
            <numerusform>%n требуют пароля</numerusform>
            <numerusform>%n требуют пароля</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n need a password</source>
        <translation>
            <numerusform>%n требует пароля</numerusform>
            <numerusform>%n требуют пароля</numerusform>
            <numerusform>%n требуют пароля</numerusform>
        </translation>
    </message>
    <message>
        <source>Reading…</source>
        <translation>Чтение…</translation>
    </message>
    <message>
        <source>, ~{time} left</source>
        <translation>, осталось ~{time}</translation>
    </message>
    <message>
        <source>page {done}/{total}</source>
        <translation>страница {done}/{total}</translation>
    </message>
</context>
<context>
    <name>Counted</name>
    <message numerus="yes">
        <source>{done} of %n wave</source>
        <translation>
            <numerusform>{done} из %n волны</numerusform>
            <numerusform>{done} из %n волн</numerusform>
            <numerusform>{done} из %n волн</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>{done} of %n waves</source>
        <translation>
            <numerusform>{done} из %n волны</numerusform>
            <numerusform>{done} из %n волн</numerusform>
            <numerusform>{done} из %n волн</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>{done} of %n step</source>
        <translation>
            <numerusform>{done} из %n шага</numerusform>
            <numerusform>{done} из %n шагов</numerusform>
            <numerusform>{done} из %n шагов</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>{done} of %n steps</source>
        <translation>
            <numerusform>{done} из %n шага</numerusform>
            <numerusform>{done} из %n шагов</numerusform>
            <numerusform>{done} из %n шагов</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>(%n note dropped: not on its page)</source>
        <translation>
            <numerusform>(отброшена %n заметка: её нет на указанной странице)</numerusform>
            <numerusform>(отброшены %n заметки: их нет на указанных страницах)</numerusform>
            <numerusform>(отброшено %n заметок: их нет на указанных страницах)</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>(%n notes dropped: not on its page)</source>
        <translation>
            <numerusform>(отброшена %n заметка: её нет на указанной странице)</numerusform>
            <numerusform>(отброшены %n заметки: их нет на указанных страницах)</numerusform>
            <numerusform>(отброшено %n заметок: их нет на указанных страницах)</numerusform>
        </translation>
    </message>
</context>
<context>
    <name>CrashDialog</name>
    <message>
        <source>Longread hit a bug</source>
        <translation>В Longread произошла ошибка</translation>
    </message>
    <message>
        <source>It is also in {path}.</source>
        <translation>Он также сохранён в {path}.</translation>
    </message>
    <message>
        <source>Something went wrong that is Longread&apos;s fault, not yours. Your documents and conversations are saved. Please copy this report into a bug report.</source>
        <translation>Что-то пошло не так — по вине Longread, а не вашей. Документы и разговоры сохранены. Пожалуйста, скопируйте этот отчёт в сообщение об ошибке.</translation>
    </message>
    <message>
        <source>Copy report</source>
        <translation>Скопировать отчёт</translation>
    </message>
</context>
<context>
    <name>DropZone</name>
    <message>
        <source>Drop PDFs or folders here, or press Ctrl+O</source>
        <translation>Перетащите сюда PDF-файлы или папки либо нажмите Ctrl+O</translation>
    </message>
    <message>
        <source>Longread reads every page of your documents with a model on this computer: nothing is uploaded. PDF, Word (.docx), EPUB, HTML, RTF, text and Markdown files; a dropped .gguf file becomes the model.</source>
        <translation>Longread читает каждую страницу ваших документов моделью на этом компьютере: ничего никуда не отправляется. PDF, Word (.docx), EPUB, HTML, RTF, текстовые файлы и Markdown; перетащенный файл .gguf становится моделью.</translation>
    </message>
    <message>
        <source>Open documents…</source>
        <translation>Открыть документы…</translation>
    </message>
    <message>
        <source>Try the sample document</source>
        <translation>Попробовать на примере</translation>
    </message>
</context>
<context>
    <name>GetModelsDialog</name>
    <message>
        <source>Get models</source>
        <translation>Загрузка моделей</translation>
    </message>
    <message>
        <source>Suggested models (instruction-tuned, for long documents):</source>
        <translation>Рекомендуемые модели (обученные следовать инструкциям, для длинных документов):</translation>
    </message>
    <message>
        <source>Hugging Face repository:</source>
        <translation>Репозиторий Hugging Face:</translation>
    </message>
    <message>
        <source>org/name, e.g. Qwen/Qwen2.5-1.5B-Instruct-GGUF</source>
        <translation>организация/название, например Qwen/Qwen2.5-1.5B-Instruct-GGUF</translation>
    </message>
    <message>
        <source>List files</source>
        <translation>Показать файлы</translation>
    </message>
    <message>
        <source>Choose a model to see its size and what fits on this computer.</source>
        <translation>Выберите модель, чтобы увидеть её размер и что поместится на этом компьютере.</translation>
    </message>
    <message>
        <source>Download</source>
        <translation>Скачать</translation>
    </message>
    <message>
        <source>Cancel download</source>
        <translation>Отменить загрузку</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>Закрыть</translation>
    </message>
    <message>
        <source>{title} — {context}-token window · {licence} · {sizes}</source>
        <translation>{title} — окно {context} · {licence} · {sizes}</translation>
    </message>
    <message>
        <source>Listing {repo}…</source>
        <translation>Получаю список файлов {repo}…</translation>
    </message>
    <message>
        <source>This repository has no GGUF model files.</source>
        <translation>В этом репозитории нет файлов моделей GGUF.</translation>
    </message>
    <message>
        <source>{n} GGUF models.</source>
        <translation>Моделей GGUF: {n}.</translation>
    </message>
    <message>
        <source>{name}: {size}. Reading its header to plan it here…</source>
        <translation>{name}: {size}. Читаю заголовок, чтобы рассчитать, как она здесь поместится…</translation>
    </message>
    <message>
        <source>{name}: {size} to download; {free} free on disk.
{model}
{fit}</source>
        <translation>{name}: скачать {size}; свободно на диске {free}.
{model}
{fit}</translation>
    </message>
    <message>
        <source>Starting the download of {name}…</source>
        <translation>Начинаю загрузку {name}…</translation>
    </message>
    <message>
        <source>Checking {name} against the Hub&apos;s SHA-256…</source>
        <translation>Сверяю {name} с SHA-256 из Hugging Face…</translation>
    </message>
    <message>
        <source>Reading {name}&apos;s header…</source>
        <translation>Читаю заголовок {name}…</translation>
    </message>
    <message>
        <source>{name} is ready.</source>
        <translation>{name} готова.</translation>
    </message>
    <message>
        <source>{done} of {total}</source>
        <translation>{done} из {total}</translation>
    </message>
    <message>
        <source>(part {part} of {parts})</source>
        <translation>(часть {part} из {parts})</translation>
    </message>
    <message>
        <source>{speed}/s</source>
        <translation>{speed}/с</translation>
    </message>
    <message>
        <source>about {eta} left</source>
        <translation>осталось около {eta}</translation>
    </message>
    <message>
        <source>Ready: {path}. It is now in the model list.</source>
        <translation>Готово: {path}. Модель теперь есть в списке.</translation>
    </message>
    <message>
        <source>Cancelled. Download again to resume where it stopped.</source>
        <translation>Отменено. Скачайте снова, чтобы продолжить с того места, где остановилось.</translation>
    </message>
</context>
<context>
    <name>IngestPool</name>
    <message>
        <source>Could not read this file ({error}). The log has details.</source>
        <translation>Не удалось прочитать файл ({error}). Подробности в журнале.</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <source>Ready</source>
        <translation>Готов</translation>
    </message>
    <message>
        <source>&amp;File</source>
        <translation>&amp;Файл</translation>
    </message>
    <message>
        <source>&amp;Open documents…</source>
        <translation>&amp;Открыть документы…</translation>
    </message>
    <message>
        <source>Choose a &amp;model file…</source>
        <translation>Выбрать файл &amp;модели…</translation>
    </message>
    <message>
        <source>&amp;Get models…</source>
        <translation>&amp;Загрузить модели…</translation>
    </message>
    <message>
        <source>Model &amp;details…</source>
        <translation>&amp;Сведения о модели…</translation>
    </message>
    <message>
        <source>&amp;New session</source>
        <translation>&amp;Новый сеанс</translation>
    </message>
    <message>
        <source>&amp;Export session as Markdown…</source>
        <translation>&amp;Экспорт сеанса в Markdown…</translation>
    </message>
    <message>
        <source>&amp;Settings…</source>
        <translation>Н&amp;астройки…</translation>
    </message>
    <message>
        <source>&amp;Quit</source>
        <translation>В&amp;ыход</translation>
    </message>
    <message>
        <source>&amp;Help</source>
        <translation>&amp;Справка</translation>
    </message>
    <message>
        <source>&amp;Keyboard and mouse</source>
        <translation>&amp;Клавиатура и мышь</translation>
    </message>
    <message>
        <source>Drop to add these documents</source>
        <translation>Отпустите, чтобы добавить эти документы</translation>
    </message>
    <message>
        <source>Open documents</source>
        <translation>Открыть документы</translation>
    </message>
    <message>
        <source>Documents ({patterns});;Models (*.gguf);;All files (*)</source>
        <translation>Документы ({patterns});;Модели (*.gguf);;Все файлы (*)</translation>
    </message>
    <message>
        <source>Skipped {skipped} files in those folders that are not documents Longread reads.</source>
        <translation>Пропущено файлов в этих папках, которые Longread не читает: {skipped}.</translation>
    </message>
    <message>
        <source>{name} was not read: double-click it in the list to enter its password.</source>
        <translation>{name} не прочитан: дважды щёлкните по нему в списке, чтобы ввести пароль.</translation>
    </message>
    <message>
        <source>The documents changed: the next question starts a new session (the last one is in the sidebar).</source>
        <translation>Документы изменились: следующий вопрос начнёт новый сеанс (прежний — на боковой панели).</translation>
    </message>
    <message>
        <source>Counting tokens with {model}…</source>
        <translation>Считаю токены моделью {model}…</translation>
    </message>
    <message>
        <source>Add documents first: drop them on the window or press Ctrl+O.</source>
        <translation>Сначала добавьте документы: перетащите их в окно или нажмите Ctrl+O.</translation>
    </message>
    <message>
        <source>The model is being measured: cancel that (the cells done are kept) to ask now.</source>
        <translation>Идёт измерение модели: отмените его (готовые ячейки сохранятся), чтобы спросить сейчас.</translation>
    </message>
    <message>
        <source>Some documents are still being read; ask again when they are ready.</source>
        <translation>Часть документов ещё читается; спросите снова, когда они будут готовы.</translation>
    </message>
    <message>
        <source>The model is being measured: cancel that (the cells done are kept) to go on now.</source>
        <translation>Идёт измерение модели: отмените его (готовые ячейки сохранятся), чтобы продолжить сейчас.</translation>
    </message>
    <message>
        <source>This session&apos;s documents are gone; it cannot be resumed.</source>
        <translation>Документов этого сеанса больше нет; продолжить его нельзя.</translation>
    </message>
    <message>
        <source>Stopped. The partial answer is kept in the session.</source>
        <translation>Остановлено. Неполный ответ сохранён в сеансе.</translation>
    </message>
    <message>
        <source>Stopped. The steps so far are kept in the session.</source>
        <translation>Остановлено. Уже сделанные шаги сохранены в сеансе.</translation>
    </message>
    <message>
        <source>Ask something first: there is no session to export yet.</source>
        <translation>Сначала задайте вопрос: экспортировать пока нечего.</translation>
    </message>
    <message>
        <source>Export session as Markdown</source>
        <translation>Экспорт сеанса в Markdown</translation>
    </message>
    <message>
        <source>Markdown (*.md)</source>
        <translation>Markdown (*.md)</translation>
    </message>
    <message>
        <source>Could not write {name}: {reason}.</source>
        <translation>Не удалось записать {name}: {reason}.</translation>
    </message>
    <message>
        <source>Exported to {path}</source>
        <translation>Сохранено в {path}</translation>
    </message>
    <message>
        <source>Wait for the answer (or press Esc) before opening another session.</source>
        <translation>Дождитесь ответа (или нажмите Esc), прежде чем открывать другой сеанс.</translation>
    </message>
    <message>
        <source>That session no longer exists.</source>
        <translation>Этого сеанса больше нет.</translation>
    </message>
    <message>
        <source>Choose a GGUF model file</source>
        <translation>Выберите файл модели GGUF</translation>
    </message>
    <message>
        <source>GGUF models (*.gguf)</source>
        <translation>Модели GGUF (*.gguf)</translation>
    </message>
    <message>
        <source>Wait for the answer (or press Esc) before changing the model.</source>
        <translation>Дождитесь ответа (или нажмите Esc), прежде чем менять модель.</translation>
    </message>
    <message>
        <source>Cancel the measurement before changing the model.</source>
        <translation>Отмените измерение, прежде чем менять модель.</translation>
    </message>
    <message>
        <source>Model: {name}</source>
        <translation>Модель: {name}</translation>
    </message>
    <message>
        <source>Still using {name}: {problem}</source>
        <translation>По-прежнему используется {name}: {problem}</translation>
    </message>
    <message>
        <source>Select a document and press Delete (or Remove) to take it out.</source>
        <translation>Выделите документ и нажмите Delete (или «Убрать»), чтобы убрать его.</translation>
    </message>
    <message>
        <source>Working…</source>
        <translation>Работаю…</translation>
    </message>
    <message>
        <source>Keyboard and mouse</source>
        <translation>Клавиатура и мышь</translation>
    </message>
    <message>
        <source>Drop PDFs, text files or folders on the window to add them; drop a .gguf file to use that model.

Ctrl+O  open documents
Ctrl+Enter  ask
Esc  cancel the answer
Ctrl+N  new session
Alt+Up / Alt+Down  reorder the selected document (or drag its row)
Delete  remove it
Enter or double-click  give a locked PDF its password
Ctrl+,  settings

Click a page citation in an answer to see the page.</source>
        <translation>Перетащите в окно PDF, текстовые файлы или папки, чтобы добавить их; перетащите файл .gguf, чтобы читать этой моделью.

Ctrl+O  открыть документы
Ctrl+Enter  спросить
Esc  отменить ответ
Ctrl+N  новый сеанс
Alt+Вверх / Alt+Вниз  переставить выделенный документ (или перетащите его строку)
Delete  убрать его
Enter или двойной щелчок  ввести пароль защищённого PDF
Ctrl+,  настройки

Нажмите на ссылку на страницу в ответе, чтобы увидеть эту страницу.</translation>
    </message>
</context>
<context>
    <name>MemoryPanel</name>
    <message>
        <source>Memory</source>
        <translation>Память</translation>
    </message>
    <message>
        <source>Carry what earlier sessions found</source>
        <translation>Переносить находки прошлых сеансов</translation>
    </message>
    <message>
        <source>No memory yet: finished answers are remembered here.</source>
        <translation>Памяти пока нет: здесь запоминаются готовые ответы.</translation>
    </message>
    <message>
        <source>Date</source>
        <translation>Дата</translation>
    </message>
    <message>
        <source>Entry</source>
        <translation>Запись</translation>
    </message>
    <message>
        <source>Tokens</source>
        <translation>Токенов</translation>
    </message>
    <message>
        <source>In</source>
        <translation>Входит</translation>
    </message>
    <message>
        <source>Select an entry to read or edit it.</source>
        <translation>Выберите запись, чтобы прочитать или изменить её.</translation>
    </message>
    <message>
        <source>Pin</source>
        <translation>Закрепить</translation>
    </message>
    <message>
        <source>Save edit</source>
        <translation>Сохранить правку</translation>
    </message>
    <message>
        <source>Forget</source>
        <translation>Забыть</translation>
    </message>
    <message>
        <source>in</source>
        <translation>входит</translation>
    </message>
    <message>
        <source>left out</source>
        <translation>не входит</translation>
    </message>
    <message>
        <source>Memory is off.</source>
        <translation>Память выключена.</translation>
    </message>
    <message>
        <source>No memory for these documents yet: finished answers are remembered here.</source>
        <translation>Для этих документов памяти пока нет: здесь запоминаются готовые ответы.</translation>
    </message>
    <message>
        <source>{n} of {total} entries go in: {tokens} tokens.</source>
        <translation>В вопрос войдут записи: {n} из {total}, токенов: {tokens}.</translation>
    </message>
    <message>
        <source>Tick the ones you want instead.</source>
        <translation>Отметьте вместо них те, что нужны вам.</translation>
    </message>
    <message>
        <source>Forget for good? Click again</source>
        <translation>Забыть насовсем? Нажмите ещё раз</translation>
    </message>
    <message>
        <source>Unpin</source>
        <translation>Открепить</translation>
    </message>
</context>
<context>
    <name>ModelDetailsDialog</name>
    <message>
        <source>Model details</source>
        <extracomment>(KV type, task label, length, mean score), by KV type, task and length.</extracomment>
        <translation>Сведения о модели</translation>
    </message>
    <message>
        <source>KV cache</source>
        <translation>KV-кэш</translation>
    </message>
    <message>
        <source>task</source>
        <translation>задача</translation>
    </message>
    <message>
        <source>length (tokens)</source>
        <translation>длина (токенов)</translation>
    </message>
    <message>
        <source>score</source>
        <translation>оценка</translation>
    </message>
    <message>
        <source>Measure (quick)</source>
        <translation>Измерить (быстро)</translation>
    </message>
    <message>
        <source>Two lengths at mid-depth: a few minutes on the bundled model</source>
        <translation>Две длины на средней глубине: несколько минут на встроенной модели</translation>
    </message>
    <message>
        <source>Measure fully</source>
        <translation>Измерить полностью</translation>
    </message>
    <message>
        <source>Every length up to the window at three depths: can take hours</source>
        <translation>Все длины вплоть до окна на трёх глубинах: может занять несколько часов</translation>
    </message>
    <message>
        <source>Measuring now: its progress is in the model panel</source>
        <translation>Идёт измерение: его ход виден на панели модели</translation>
    </message>
    <message>
        <source>Model details: {name}</source>
        <translation>Сведения о модели: {name}</translation>
    </message>
    <message>
        <source>{name} has not been measured on this computer yet. Its trained window says how much it can take, not how much it reads reliably. Measure it here (Measure) or with &lt;code&gt;longread probe --quick&lt;/code&gt; (a few minutes) or &lt;code&gt;longread probe&lt;/code&gt;.</source>
        <translation>Модель {name} на этом компьютере ещё не измерялась. Окно, на котором она обучена, говорит, сколько она может вместить, но не сколько надёжно читает. Измерьте её здесь («Измерить») или командой &lt;code&gt;longread probe --quick&lt;/code&gt; (несколько минут) либо &lt;code&gt;longread probe&lt;/code&gt;.</translation>
    </message>
    <message>
        <source>{name}: effective context, the longest length at which every task scores at least {threshold} (RULER&apos;s threshold).</source>
        <translation>{name}: эффективный контекст — наибольшая длина, на которой каждая задача набирает не меньше {threshold} (порог RULER).</translation>
    </message>
    <message>
        <source>KV cache {kv_type}: reliably reads &lt;b&gt;{tokens} tokens&lt;/b&gt; of the {tested} tested</source>
        <translation>KV-кэш {kv_type}: надёжно читает до &lt;b&gt;{tokens}&lt;/b&gt; токенов (проверено до {tested})</translation>
    </message>
    <message>
        <source>KV cache {kv_type}: &lt;b&gt;no length&lt;/b&gt; read reliably of the {tested} tested</source>
        <translation>KV-кэш {kv_type}: надёжно не читается &lt;b&gt;ни одна длина&lt;/b&gt; (проверено до {tested})</translation>
    </message>
    <message>
        <source>(ended by {task})</source>
        <translation>(предел задал тест «{task}»)</translation>
    </message>
</context>
<context>
    <name>ModelPicker</name>
    <message>
        <source>cannot be read ({reason})</source>
        <translation>не читается ({reason})</translation>
    </message>
    <message>
        <source>bundled</source>
        <translation>встроенная</translation>
    </message>
    <message>
        <source>added</source>
        <translation>добавлена</translation>
    </message>
    <message>
        <source>chosen</source>
        <translation>выбрана</translation>
    </message>
    <message>
        <source>reading…</source>
        <translation>читаю…</translation>
    </message>
    <message>
        <source>{tokens}-token context</source>
        <translation>контекст {tokens}</translation>
    </message>
    <message>
        <source>Model:</source>
        <translation>Модель:</translation>
    </message>
    <message>
        <source>Details…</source>
        <translation>Подробнее…</translation>
    </message>
    <message>
        <source>What this model reads reliably on this computer (longread probe)</source>
        <translation>Сколько эта модель надёжно читает на этом компьютере (longread probe)</translation>
    </message>
    <message>
        <source>Choose a GGUF model file…</source>
        <translation>Выбрать файл модели GGUF…</translation>
    </message>
    <message>
        <source>Get models from Hugging Face…</source>
        <translation>Загрузить модели с Hugging Face…</translation>
    </message>
</context>
<context>
    <name>PageViewer</name>
    <message>
        <source>{name}, page {page}</source>
        <translation>{name}, страница {page}</translation>
    </message>
    <message>
        <source>{name}, page {page} of {pages}</source>
        <translation>{name}, страница {page} из {pages}</translation>
    </message>
    <message>
        <source>Text Longread read from this page (quoted passage highlighted)</source>
        <translation>Текст, который Longread прочитал с этой страницы (цитата выделена)</translation>
    </message>
    <message>
        <source>Text Longread read from this page</source>
        <translation>Текст, который Longread прочитал с этой страницы</translation>
    </message>
    <message>
        <source>Opening the PDF…</source>
        <translation>Открываю PDF…</translation>
    </message>
    <message>
        <source>The PDF is no longer at {path}; the text Longread read is on the right.</source>
        <translation>PDF больше нет по адресу {path}; прочитанный Longread текст — справа.</translation>
    </message>
    <message>
        <source>This is a text file: it has no page images. Longread cut it into pages of about 3,000 characters; the page&apos;s text is on the right.</source>
        <translation>Это текстовый файл: изображений страниц у него нет. Longread разрезал его на страницы примерно по 3000 знаков; текст страницы — справа.</translation>
    </message>
    <message>
        <source>This PDF is locked with a password, which Longread does not keep; the text Longread read with it is on the right.</source>
        <translation>Этот PDF защищён паролем, а Longread паролей не хранит; текст, прочитанный с паролем, — справа.</translation>
    </message>
    <message>
        <source>Qt PDF could not open this file; the text Longread read is on the right.</source>
        <translation>Qt PDF не смог открыть этот файл; прочитанный Longread текст — справа.</translation>
    </message>
</context>
<context>
    <name>PasswordPrompt</name>
    <message>
        <source>Password for {name}</source>
        <translation>Пароль для {name}</translation>
    </message>
    <message>
        <source>Longread uses the password to read the text once; it is not saved.</source>
        <translation>Longread использует пароль один раз, чтобы прочитать текст; пароль не сохраняется.</translation>
    </message>
    <message>
        <source>Read it</source>
        <translation>Прочитать</translation>
    </message>
    <message>
        <source>Not now</source>
        <translation>Не сейчас</translation>
    </message>
</context>
<context>
    <name>ProbePanel</name>
    <message>
        <source>What this model finds, by length and depth: click for the details</source>
        <extracomment>The thumbnail&apos;s height in the panel (pixels).</extracomment>
        <translation>Что эта модель находит в зависимости от длины и глубины: щёлкните, чтобы увидеть подробности</translation>
    </message>
    <message>
        <source>Effective context: not measured yet.</source>
        <translation>Эффективный контекст: ещё не измерен.</translation>
    </message>
    <message>
        <source>Measure effective context</source>
        <translation>Измерить эффективный контекст</translation>
    </message>
    <message>
        <source>Test what this model finds in long texts on this computer (longread probe)</source>
        <translation>Проверить, что эта модель находит в длинных текстах на этом компьютере (longread probe)</translation>
    </message>
    <message>
        <source>Quick (two lengths, a few minutes)</source>
        <translation>Быстро (две длины, несколько минут)</translation>
    </message>
    <message>
        <source>Full (every length and depth; can take hours)</source>
        <translation>Полностью (все длины и глубины; может занять несколько часов)</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>Отмена</translation>
    </message>
    <message>
        <source>Stop measuring; the cells done are kept and the next run goes on</source>
        <translation>Остановить измерение; готовые ячейки сохранятся, и следующий запуск продолжит с них</translation>
    </message>
    <message>
        <source>no
heatmap</source>
        <translation>нет
тепловой
карты</translation>
    </message>
    <message>
        <source>Effective context: not measured yet. The trained window says how much it takes, not </source>
        <translation>Эффективный контекст: ещё не измерен. Окно, на котором модель обучена, говорит, сколько она вмещает, но не </translation>
    </message>
    <message>
        <source>how much it reads reliably.</source>
        <translation>сколько она надёжно читает.</translation>
    </message>
    <message>
        <source>{tokens} tokens at {kv}</source>
        <translation>{tokens} ток. с кэшем {kv}</translation>
    </message>
    <message>
        <source>none at {kv} (below {threshold} at {shortest} tokens)</source>
        <translation>нет с кэшем {kv} (ниже {threshold} уже на {shortest} ток.)</translation>
    </message>
    <message>
        <source>Effective context: </source>
        <translation>Эффективный контекст: </translation>
    </message>
    <message>
        <source>quick</source>
        <translation>быстрое</translation>
    </message>
    <message>
        <source>full</source>
        <translation>полное</translation>
    </message>
    <message>
        <source>Starting a {kind} measurement at {kv}…</source>
        <translation>Начинаю {kind} измерение с кэшем {kv}…</translation>
    </message>
    <message>
        <source>Measured {total} cells at {kv}.</source>
        <translation>Измерено ячеек: {total}, кэш {kv}.</translation>
    </message>
    <message>
        <source>Cell {n} of {total} at {kv}: {task}, {length} tokens</source>
        <translation>Ячейка {n} из {total}, кэш {kv}: {task}, {length} ток.</translation>
    </message>
    <message>
        <source>, read {done} of {all}</source>
        <translation>, прочитано {done} из {all}</translation>
    </message>
    <message>
        <source> · about {eta} left</source>
        <translation> · осталось около {eta}</translation>
    </message>
</context>
<context>
    <name>ProbeRunner</name>
    <message>
        <source>Measured: {ran} cells now, {total} in all.</source>
        <translation>Измерено ячеек: {ran} сейчас, {total} всего.</translation>
    </message>
    <message>
        <source>Stopped. The cells done are kept: measure again to go on.</source>
        <translation>Остановлено. Готовые ячейки сохранены: измерьте снова, чтобы продолжить.</translation>
    </message>
</context>
<context>
    <name>SessionsSidebar</name>
    <message>
        <source>Sessions</source>
        <translation>Сеансы</translation>
    </message>
    <message>
        <source>New session</source>
        <translation>Новый сеанс</translation>
    </message>
    <message>
        <source>Start again with no documents (Ctrl+N)</source>
        <translation>Начать заново, без документов (Ctrl+N)</translation>
    </message>
    <message>
        <source>Search questions and answers</source>
        <translation>Поиск по вопросам и ответам</translation>
    </message>
    <message>
        <source>Your questions and answers are kept here, newest first.</source>
        <translation>Здесь хранятся ваши вопросы и ответы, новые сверху.</translation>
    </message>
    <message>
        <source>Session deleted.</source>
        <translation>Сеанс удалён.</translation>
    </message>
    <message>
        <source>Undo</source>
        <translation>Отменить</translation>
    </message>
    <message numerus="yes">
        <source>%n question</source>
        <translation>
            <numerusform>%n вопрос</numerusform>
            <numerusform>%n вопроса</numerusform>
            <numerusform>%n вопросов</numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n questions</source>
        <translation>
            <numerusform>%n вопрос</numerusform>
            <numerusform>%n вопроса</numerusform>
            <numerusform>%n вопросов</numerusform>
        </translation>
    </message>
    <message>
        <source>No session matches.</source>
        <translation>Подходящих сеансов нет.</translation>
    </message>
    <message>
        <source>Open</source>
        <translation>Открыть</translation>
    </message>
    <message>
        <source>Rename…</source>
        <translation>Переименовать…</translation>
    </message>
    <message>
        <source>Delete</source>
        <translation>Удалить</translation>
    </message>
    <message>
        <source>Rename session</source>
        <translation>Переименовать сеанс</translation>
    </message>
    <message>
        <source>Title:</source>
        <translation>Название:</translation>
    </message>
</context>
<context>
    <name>SettingsDialog</name>
    <message>
        <source>f16: full precision, fastest on CPUs</source>
        <translation>f16: полная точность, быстрее всего на CPU</translation>
    </message>
    <message>
        <source>q8_0: half the memory, slower reading</source>
        <translation>q8_0: вдвое меньше памяти, чтение медленнее</translation>
    </message>
    <message>
        <source>q4_0: a quarter of the memory, slowest reading</source>
        <translation>q4_0: вчетверо меньше памяти, самое медленное чтение</translation>
    </message>
    <message>
        <source>Longread settings</source>
        <translation>Настройки Longread</translation>
    </message>
    <message>
        <source>Automatic: what the documents need</source>
        <translation>Автоматически: сколько нужно документам</translation>
    </message>
    <message>
        <source> tokens</source>
        <translation> ток.</translation>
    </message>
    <message>
        <source>Context window</source>
        <translation>Окно контекста</translation>
    </message>
    <message>
        <source>KV cache</source>
        <translation>KV-кэш</translation>
    </message>
    <message>
        <source>Carry notes from part to part</source>
        <translation>Переносить заметки из части в часть</translation>
    </message>
    <message>
        <source>Map: each part alone, then one pass over all notes</source>
        <translation>Карта: каждая часть отдельно, затем один проход по всем заметкам</translation>
    </message>
    <message>
        <source>Read in waves</source>
        <translation>Чтение волнами</translation>
    </message>
    <message>
        <source>Every core ({n})</source>
        <translation>Все ядра ({n})</translation>
    </message>
    <message>
        <source>Threads</source>
        <translation>Потоки</translation>
    </message>
    <message>
        <source>Assemble a changed corpus from the documents already read</source>
        <translation>Собирать изменённый корпус из уже прочитанных документов</translation>
    </message>
    <message>
        <source>After a reorder, a removal or an addition, the documents&apos; saved memory is put together in seconds instead of reading everything again. Its answers are close to a fresh read&apos;s, not always the same; turn this off to always read fresh.</source>
        <translation>После перестановки, удаления или добавления сохранённая память документов собирается за секунды, а не читается заново. Её ответы близки к ответам после нового чтения, но не всегда совпадают; выключите, чтобы всегда читать заново.</translation>
    </message>
    <message>
        <source>Changed corpus</source>
        <translation>Изменённый корпус</translation>
    </message>
    <message>
        <source>Choose…</source>
        <translation>Выбрать…</translation>
    </message>
    <message>
        <source>Data folder</source>
        <translation>Папка данных</translation>
    </message>
    <message>
        <source>The system&apos;s language</source>
        <translation>Язык системы</translation>
    </message>
    <message>
        <source>Language</source>
        <translation>Язык</translation>
    </message>
    <message>
        <source>None: read with the model on this computer</source>
        <translation>Нет: читать моделью на этом компьютере</translation>
    </message>
    <message>
        <source>Server URL</source>
        <translation>Адрес сервера</translation>
    </message>
    <message>
        <source>The first model the server serves</source>
        <translation>Первая модель, которую отдаёт сервер</translation>
    </message>
    <message>
        <source>Server model</source>
        <translation>Модель на сервере</translation>
    </message>
    <message>
        <source>An OpenAI-compatible server such as llama-server. Its API key is read from LONGREAD_SERVER_API_KEY or the system keyring and never saved here.</source>
        <translation>OpenAI-совместимый сервер, например llama-server. Ключ доступа к нему берётся из LONGREAD_SERVER_API_KEY или из системного хранилища ключей и здесь не сохраняется.</translation>
    </message>
    <message>
        <source>The data folder holds your documents, sessions and the log. A new folder, or another language, is used from the next start.</source>
        <translation>В папке данных хранятся ваши документы, сеансы и журнал. Новая папка или другой язык вступят в силу при следующем запуске.</translation>
    </message>
</context>
<context>
    <name>TimelineView</name>
    <message>
        <source>Thinking deeply</source>
        <translation>Основательно обдумываю</translation>
    </message>
    <message>
        <source>Reading in waves</source>
        <translation>Читаю волнами</translation>
    </message>
    <message>
        <source>Answering</source>
        <translation>Отвечаю</translation>
    </message>
    <message>
        <source>(notes kept from an earlier question)</source>
        <translation>(заметки сохранены от прежнего вопроса)</translation>
    </message>
    <message>
        <source>Wave {n}</source>
        <translation>Волна {n}</translation>
    </message>
    <message>
        <source>Step {n}: {heading}</source>
        <translation>Шаг {n}: {heading}</translation>
    </message>
    <message>
        <source>Resume</source>
        <translation>Продолжить</translation>
    </message>
    <message>
        <source>Go on from the first step not done; finished steps are kept as they are</source>
        <translation>Продолжить с первого невыполненного шага; готовые шаги остаются как есть</translation>
    </message>
    <message>
        <source>Stopped after {progress} ({status}).</source>
        <translation>Остановлено после {progress} ({status}).</translation>
    </message>
    <message>
        <source>Resume goes on from there.</source>
        <translation>«Продолжить» возобновит работу с этого места.</translation>
    </message>
</context>
<context>
    <name>intake</name>
    <message>
        <source>{name}: no documents Longread reads in this folder.</source>
        <translation>{name}: в этой папке нет документов, которые Longread умеет читать.</translation>
    </message>
</context>
<context>
    <name>main</name>
    <message>
        <source>Longread cannot start</source>
        <translation>Longread не может запуститься</translation>
    </message>
</context>
<context>
    <name>runs</name>
    <message>
        <source>Asked</source>
        <translation>Вопрос</translation>
    </message>
    <message>
        <source>Thought deeply</source>
        <translation>Основательное размышление</translation>
    </message>
    <message>
        <source>Read in waves</source>
        <translation>Чтение волнами</translation>
    </message>
    <message>
        <source>pending</source>
        <translation>ждёт</translation>
    </message>
    <message>
        <source>running</source>
        <translation>идёт</translation>
    </message>
    <message>
        <source>done</source>
        <translation>готово</translation>
    </message>
    <message>
        <source>failed</source>
        <translation>ошибка</translation>
    </message>
    <message>
        <source>cancelled</source>
        <translation>отменено</translation>
    </message>
    <message>
        <source>interrupted</source>
        <translation>прервано</translation>
    </message>
    <message>
        <source>Plan</source>
        <translation>План</translation>
    </message>
    <message>
        <source>Examination</source>
        <translation>Изучение</translation>
    </message>
    <message>
        <source>Hypotheses</source>
        <translation>Гипотезы</translation>
    </message>
    <message>
        <source>Critique</source>
        <translation>Критика</translation>
    </message>
    <message>
        <source>Answer</source>
        <translation>Ответ</translation>
    </message>
    <message>
        <source>Wave</source>
        <translation>Волна</translation>
    </message>
    <message>
        <source>Answering from the notes</source>
        <translation>Ответ по заметкам</translation>
    </message>
    <message>
        <source>Wave {n} of {total}</source>
        <translation>Волна {n} из {total}</translation>
    </message>
    <message>
        <source>Step {n} of {total} ({kind})</source>
        <translation>Шаг {n} из {total} ({kind})</translation>
    </message>
    <message>
        <source>{progress}, about {left} left</source>
        <translation>{progress}, осталось около {left}</translation>
    </message>
</context>
<context>
    <name>units</name>
    <message>
        <source>{s} s</source>
        <translation>{s} с</translation>
    </message>
    <message>
        <source>{min} min {s} s</source>
        <translation>{min} мин {s} с</translation>
    </message>
    <message>
        <source>{h} h {min} min</source>
        <translation>{h} ч {min} мин</translation>
    </message>
    <message>
        <source>TB</source>
        <translation>ТБ</translation>
    </message>
    <message>
        <source>GB</source>
        <translation>ГБ</translation>
    </message>
    <message>
        <source>MB</source>
        <translation>МБ</translation>
    </message>
    <message>
        <source>KB</source>
        <translation>КБ</translation>
    </message>
    <message>
        <source>B</source>
        <translation>Б</translation>
    </message>
</context>
</TS>
