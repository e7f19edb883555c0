"""Hand-written material the Quiver-tool conversations are built from: facts of the demo
knowledge base (``samples/``) with their evidence, topics of other knowledge bases a user may
have, shop-database question templates with their gold SQL, file names, and questions that need
no tool. Argument values come from real data (the shop database is queried at build time).

The demo's questions (``host.demo.QUESTIONS``) and the sentences that answer them are reserved:
no training conversation asks them or answers with those sentences (the demo measures the model).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class KbFact:
    """A fact of the demo knowledge base: questions about it, a keyword query, the evidence (an
    exact substring of one sample document) and the answer with ``{cite}`` for the citation."""

    id: str
    questions: tuple[str, ...]
    query: str
    evidence: str
    answer: str


# Sentences that answer the demo's questions: never a training target, never cited as an answer.
DEMO_EVIDENCE = (
    "The retrieval server keeps knowledge bases on Milvus.",
    "By default Milvus Lite stores a knowledge base in a local file",
    "any Milvus server or cluster can be used by setting its URI",
    "set `endpoint` to its OpenAI-compatible base URL",
    "point <code>models.endpoint</code>",
    "point `models.endpoint`",
    "--enable-auto-tool-choice --tool-call-parser hermes",
    "For millions of documents, run a Milvus server",
    "A server that dies is restarted and the call is retried once.",
    "When a tool fails, Quiver returns an MCP error result",
    "The host feeds\nthis text back to the model as an observation",
    "this text back to the model as an observation so that it can correct itself",
)

KB_FACTS: tuple[KbFact, ...] = (
    KbFact("what_is_quiver", ("What is Quiver?", "Can you explain what Quiver is?", "What is Quiver used for?"),
           "Quiver suite of MCP servers", "Quiver is a suite of MCP (Model Context Protocol) servers",
           "Quiver is a suite of MCP (Model Context Protocol) servers for building LLM applications {cite}."),
    KbFact("clients", ("Which clients can use Quiver's servers?", "Can I use the Quiver servers from Cursor or Cline?",
                       "What MCP clients work with Quiver?"),
           "MCP clients Claude Desktop Cline Cursor Codex", "Claude Desktop, Cline, Cursor, Codex",
           "Any MCP client can use them over stdio or streamable HTTP: Claude Desktop, Cline, Cursor, Codex, "
           "the MCP Inspector or Quiver's own host {cite}."),
    KbFact("parse_formats", ("What file formats can the parse server read?", "Which file types does Quiver parse?",
                             "Can the parse server handle PowerPoint and Excel files?"),
           "parse server file formats", "The parse server turns files into Markdown plus structure",
           "The parse server turns PDF, DOCX, PPTX, XLSX, HTML, Markdown, CSV, JSON and plain text files into "
           "Markdown plus structure {cite}."),
    KbFact("chunk_tool", ("What does the chunk tool do?", "How do I split a document into chunks?",
                          "Which tool splits text for retrieval?"),
           "chunk tool split text", "splits text into retrieval-sized chunks",
           "The parse server's `chunk` tool splits text into retrieval-sized chunks {cite}."),
    KbFact("search_modes", ("What search modes does the retrieval server support?", "Is search dense or keyword based?",
                            "How does hybrid search work in Quiver?"),
           "search modes dense BM25 hybrid", "Search is dense (meaning), BM25 (exact words) or hybrid",
           "Search is dense (by meaning), BM25 (exact words) or hybrid, which fuses both with reciprocal rank "
           "fusion {cite}."),
    KbFact("ingestion", ("What happens when documents are ingested?", "What does ingestion do to my documents?",
                         "What are the steps of ingestion?"),
           "ingestion steps parse chunk embed index", "Ingestion parses, chunks, embeds and",
           "Ingestion parses, chunks, embeds and indexes the documents {cite}."),
    KbFact("rerank_server", ("What does the rerank server do?", "What is reranking used for in Quiver?",
                             "Which rerankers are available?"),
           "rerank server rescoring", "The rerank server rescores search candidates",
           "The rerank server rescores search candidates with cross-encoders, late interaction or LLM rerankers, "
           "and fuses scores from several retrievers {cite}."),
    KbFact("text2sql_steps", ("How does the text2sql server answer a question?", "How does Quiver turn a question into SQL?",
                              "What does text2sql do with my question?"),
           "text2sql question to SQL steps", "It links the schema, writes",
           "It links the schema, writes candidate SQL with a language model, validates and repairs it, votes "
           "between candidates and runs the chosen query read-only {cite}."),
    KbFact("text2sql_databases", ("Which databases does text2sql support?", "Can text2sql query PostgreSQL?",
                                  "What is the default database engine for text2sql?"),
           "text2sql supported databases SQLAlchemy", "SQLite is the default; any",
           "SQLite is the default, and any SQLAlchemy URL works {cite}."),
    KbFact("finetune_methods", ("What training methods does the finetune server offer?",
                                "Can Quiver fine-tune models with DPO?", "What can the finetune server train?"),
           "finetune server methods LoRA DPO GRPO", "LoRA/QLoRA supervised fine-tuning, DPO and GRPO",
           "The finetune server controls LoRA/QLoRA supervised fine-tuning, DPO and GRPO jobs {cite}."),
    KbFact("eval_server", ("What does the eval server measure?", "What can I evaluate with Quiver?",
                           "Which metrics does the eval server compute?"),
           "eval server metrics", "server measures retrieval quality",
           "The eval server measures retrieval quality, RAG answers, text2sql execution accuracy and "
           "perplexity {cite}."),
    KbFact("config_file", ("Which file holds Quiver's configuration?", "Where is the Quiver config file?",
                           "How do I give Quiver a different config file?"),
           "configuration file quiver.toml", "read one TOML file, `configs/quiver.toml`",
           "All servers and the host read one TOML file, `configs/quiver.toml`; another can be given with "
           "`--config FILE` or `QUIVER_CONFIG` {cite}."),
    KbFact("env_override", ("How do I override one config key with an environment variable?",
                            "Can I change a setting through an environment variable?",
                            "How do I set max_steps from the environment?"),
           "environment variable override config key", "override single keys",
           "Set an environment variable of the form `QUIVER_SECTION__KEY`, for example "
           "`QUIVER_HOST__MAX_STEPS=8` {cite}."),
    KbFact("precedence", ("What takes priority over the config file?", "Do command-line flags override the config?",
                          "Which setting wins when the flag and the file disagree?"),
           "settings precedence command-line flags", "Command-line flags win over everything else.",
           "Command-line flags win over everything else {cite}."),
    KbFact("data_dir", ("What is stored in the data directory?", "What does data_dir hold?",
                        "Where does Quiver keep its knowledge bases and caches?"),
           "data directory contents", "holds the knowledge bases, the job store, the model cache and",
           "`data_dir` (default `~/.quiver`) holds the knowledge bases, the job store, the model cache and the "
           "host's transcripts {cite}."),
    KbFact("default_models", ("Which models ship with Quiver?", "What embedding model does Quiver use by default?",
                              "Which language model is the default?"),
           "default models embedder language model", "all-MiniLM-L6-v2 for embeddings",
           "The defaults ship inside Python wheels: all-MiniLM-L6-v2 for embeddings and SmolLM2-135M-Instruct for "
           "generation {cite}."),
    KbFact("larger_model", ("How do I use a larger local model?", "Can I swap the default language model for a bigger one?",
                            "How do I point Quiver at my own model folder?"),
           "use larger local model causal_lm", "set `causal_lm` to a local model folder",
           "Set `causal_lm` in the `[models]` section to a local model folder {cite}."),
    KbFact("host_settings", ("What can I set in the host section of the config?", "Which settings does [host] have?",
                             "How do I configure the agent loop?"),
           "host section settings", "The `[host]` section sets the agent loop",
           "The `[host]` section sets `max_steps`, `tool_choice`, constrained decoding, `preselect_tools`, "
           "`auto_approve` patterns and the `servers` file {cite}."),
    KbFact("roots", ("Which files can the servers read?", "Can a server open any file on my disk?",
                     "What are roots in Quiver?"),
           "servers read files roots", "Servers only read files under the folders listed in `roots`.",
           "Servers only read files under the folders listed in `roots` {cite}."),
    KbFact("host_what", ("What is the Quiver host?", "What does the host do?", "Tell me about Quiver's agent."),
           "Quiver host agent", "The host is Quiver's own agent.",
           "The host is Quiver's own agent: it connects to MCP servers, discovers their tools and answers requests "
           "in a Think, Act, Observe loop {cite}."),
    KbFact("host_servers", ("Where does the host get its list of servers?", "Can the host read a Claude Desktop config?",
                            "How do I tell the host which servers to use?"),
           "host servers mcpServers JSON file", "Servers come from an mcpServers JSON file",
           "Servers come from an mcpServers JSON file, as used by Claude Desktop and Cline, or from Quiver's TOML "
           "{cite}."),
    KbFact("name_collisions", ("What happens when two servers have a tool with the same name?",
                               "How are duplicate tool names handled?", "Do tool names from different servers clash?"),
           "tool name collisions prefix", "Tool names that collide across servers are prefixed with the server name.",
           "Tool names that collide across servers are prefixed with the server name {cite}."),
    KbFact("grammar", ("How does the host keep tool calls valid?", "Why are the tool calls always valid JSON?",
                       "Does the host constrain decoding?"),
           "constrained decoding grammar tool calls", "constrains decoding with a grammar",
           "The host constrains decoding with a grammar, so every tool call is valid JSON that matches the tool's "
           "input schema {cite}."),
    KbFact("transcripts", ("Where are the host's runs saved?", "Does the host keep transcripts?",
                           "Can I reuse past conversations as training data?"),
           "host transcripts JSON Lines", "Every run is saved as a JSON Lines transcript",
           "Every run is saved as a JSON Lines transcript in the data directory, which can later serve as "
           "fine-tuning data {cite}."),
    KbFact("host_commands", ("Which commands does the host have?", "How do I ask the agent a question from the shell?",
                             "What are the host's CLI commands?"),
           "host commands ask chat demo", "Commands: `quiver ask",
           "The commands are `quiver ask \"question\"`, `quiver chat` and `quiver demo` {cite}."),
    KbFact("archives", ("Are DOCX files checked before they are unpacked?", "How does Quiver protect against zip bombs?",
                        "Are archives checked for size?"),
           "archives size limits unpack", "Archives such as DOCX and XLSX are checked against size limits",
           "Archives such as DOCX and XLSX are checked against size limits before they are unpacked {cite}."),
    KbFact("readonly_sql", ("Can the text2sql server change my data?", "Is SQL run read-only?",
                            "Could a query delete rows in my database?"),
           "read-only SQL enforced", "runs SQL read-only, enforced by the database connection itself",
           "No: the text2sql server runs SQL read-only, enforced by the database connection itself, with a row "
           "limit and a time limit {cite}."),
    KbFact("one_statement", ("How many SQL statements can run in one call?", "Can I send several statements at once?",
                             "Are writes allowed in sql_execute?"),
           "one SELECT statement per call", "Only one SELECT statement runs per call; writes are refused.",
           "Only one SELECT statement runs per call; writes are refused {cite}."),
    KbFact("http_security", ("How is the HTTP transport protected?", "Is it safe to run the servers over HTTP?",
                             "Do the HTTP servers check the Origin header?"),
           "HTTP security localhost Origin token", "bind to localhost, check the Host and Origin headers",
           "Over HTTP the servers bind to localhost, check the Host and Origin headers against DNS rebinding, and "
           "can require a bearer token {cite}."),
    KbFact("approval", ("Does the host ask before calling a tool?", "Can I approve tool calls?",
                        "What is the auto-approve list?"),
           "tool approval auto-approve", "The host can ask the user before it calls a tool",
           "The host can ask the user before it calls a tool that is not on the auto-approve list {cite}."),
    KbFact("gpu", ("Does Quiver use my GPU?", "How do models load on a CUDA machine?", "Which precision is used on GPUs?"),
           "GPU bfloat16 CUDA", "models load on it in bfloat16 automatically",
           "When a CUDA GPU is present, models load on it in bfloat16 automatically {cite}."),
    KbFact("device_order", ("Which device does Quiver pick by default?", "Does Quiver run on Apple silicon?",
                            "What does the device setting auto mean?"),
           "default device auto CUDA MPS CPU", "picks CUDA, then Apple MPS, then the CPU",
           "The default device setting `auto` picks CUDA, then Apple MPS, then the CPU {cite}."),
    KbFact("serve_all", ("How do I expose every server over HTTP?", "Can all servers run on one port?",
                         "How do I start all servers with streamable HTTP?"),
           "serve all servers HTTP one port", "quiver serve all --transport http",
           "Run `quiver serve all --transport http` to expose every server over streamable HTTP on one port "
           "{cite}."),
    KbFact("same_code", ("Does Quiver run the same code in a cluster?", "What changes between a laptop and a cluster?",
                         "Do I need different code to scale Quiver?"),
           "scaling laptop cluster configuration", "Only the configuration changes.",
           "Quiver runs the same code on a laptop and in a cluster; only the configuration changes {cite}."),
    KbFact("parse_backend", ("What is the default backend of the parse server?", "Which libraries does parse use?",
                             "What does the parse server use to read PDFs?"),
           "parse server default backend", "pypdfium2 and python-docx",
           "The parse server's default backend is pypdfium2 and python-docx {cite}."),
)


@dataclass(frozen=True)
class Topic:
    """A topic of an imaginary knowledge base: user questions and the keyword query they deserve."""

    kb: str
    id: str
    questions: tuple[str, ...]
    query: str


KB_DESCRIPTIONS = {
    "quiver_docs": "Quiver's documentation",
    "product_docs": "the product documentation",
    "team_wiki": "the team wiki",
    "handbook": "the employee handbook: HR policies, benefits, expenses",
    "support_faq": "customer support answers about accounts, billing and the app",
    "research_notes": "the lab's research notes and paper summaries",
    "contracts": "signed contracts with customers and suppliers",
    "eng_wiki": "engineering runbooks and processes",
}
# Other names a knowledge base of the topics below is listed under (with its description): the
# name in a call must be read from the prompt, not recalled from the topic.
KB_ALIASES = ("kb_main", "company_kb", "library", "archive", "notes_2024", "internal_docs",
              "shared_drive", "knowledge", "corpus_a", "hr_portal", "helpdesk", "lab_book", "legal", "runbooks",
              "team_notes", "main_docs")
# Knowledge bases the world builds from samples/ (real observations); the others exist only in prompts.
LIVE_KBS = ("quiver_docs", "product_docs", "team_wiki")
# The demo shop's tables as sql_list_databases lists them (checked against the real server at build time).
SHOP_TABLES = ("customers", "order_items", "orders", "products", "order_totals")

_TOPICS: dict[str, list[tuple[str, tuple[str, ...], str]]] = {
    "handbook": [
        ("vacation", ("How many vacation days do I get per year?", "What is the annual leave allowance?",
                      "How much paid time off do employees have?"), "annual vacation days allowance"),
        ("parental", ("What is the parental leave policy?", "How long is paternity leave?",
                      "Do we get paid maternity leave?"), "parental leave policy"),
        ("expenses", ("How do I submit an expense report?", "Where do I file my travel expenses?",
                      "What is the process to get reimbursed?"), "submit expense report reimbursement"),
        ("remote", ("Can I work from home?", "What are the rules for remote work?",
                    "How many days a week can I work remotely?"), "remote work policy"),
        ("sick", ("What should I do when I'm sick?", "How do I report a sick day?",
                  "Do I need a doctor's note for sick leave?"), "sick leave reporting"),
        ("laptop", ("How do I get a new laptop?", "When is my laptop replaced?", "Who do I ask for new hardware?"),
         "laptop replacement hardware request"),
        ("reviews", ("When are performance reviews?", "How does the performance review process work?",
                     "How often do we get feedback from managers?"), "performance review cycle"),
        ("pension", ("Does the company pay into a pension?", "What retirement benefits do we have?",
                     "How does the pension plan work?"), "pension retirement plan"),
    ],
    "support_faq": [
        ("password", ("How do I reset my password?", "I forgot my password, what now?",
                      "Can I change my password from the app?"), "reset password"),
        ("cancel", ("How do I cancel my subscription?", "Can I stop my plan at any time?",
                    "What happens when I cancel my account?"), "cancel subscription"),
        ("refund", ("Can I get a refund?", "What is the refund policy?", "How long do refunds take?"),
         "refund policy"),
        ("2fa", ("How do I turn on two-factor authentication?", "Does the app support 2FA?",
                 "How can I secure my account with a second factor?"), "two-factor authentication setup"),
        ("export", ("How can I export my data?", "Can I download all my files?", "Is there a data export feature?"),
         "export data download"),
        ("billing", ("How do I change my billing address?", "Where do I update my credit card?",
                     "Can I switch to yearly billing?"), "change billing details"),
        ("api_limits", ("What are the API rate limits?", "How many API requests can I make per minute?",
                        "Why am I getting 429 errors from the API?"), "API rate limits"),
    ],
    "research_notes": [
        ("crispr", ("What did we find about CRISPR off-target effects?", "Are there notes on off-target edits with Cas9?",
                    "Summarize our CRISPR specificity results."), "CRISPR Cas9 off-target effects"),
        ("mrna", ("How should mRNA vaccines be stored?", "What temperature do mRNA vaccines need?",
                  "Do we have notes on mRNA vaccine stability?"), "mRNA vaccine storage temperature"),
        ("graphene", ("What is the conductivity of graphene in our samples?", "Did we measure graphene conductivity?",
                      "What were the graphene electrical results?"), "graphene conductivity measurements"),
        ("folding", ("What do the notes say about protein folding prediction?",
                     "Which papers did we summarize on protein structure prediction?",
                     "How accurate was the folding model?"), "protein folding structure prediction"),
        ("microbiome", ("What is known about the gut microbiome and diet?", "Any notes on diet effects on gut bacteria?",
                        "Summarize the microbiome study."), "gut microbiome diet effects"),
        ("battery", ("What did the solid-state battery experiment show?", "How did the battery cells degrade?",
                     "What is the cycle life of the new cells?"), "solid-state battery degradation cycle life"),
    ],
    "contracts": [
        ("termination", ("What is the termination clause in the Acme contract?", "How can we end the Acme agreement?",
                         "What notice period does the Acme contract require?"), "Acme contract termination notice"),
        ("liability", ("Is there a liability cap in our supplier contracts?", "How much is our liability limited to?",
                       "What does the limitation of liability clause say?"), "limitation of liability cap"),
        ("nda", ("How long does the NDA with Globex last?", "When does the Globex confidentiality agreement expire?",
                 "What is the duration of the Globex NDA?"), "Globex NDA duration"),
        ("payment", ("What are the payment terms with our suppliers?", "Within how many days must invoices be paid?",
                     "Do the contracts say net 30 or net 60?"), "supplier payment terms"),
        ("law", ("Which law governs the Initech contract?", "What jurisdiction applies to the Initech agreement?",
                 "Where would a dispute with Initech be settled?"), "Initech governing law jurisdiction"),
    ],
    "eng_wiki": [
        ("deploy", ("How do I deploy to staging?", "What are the steps to release to staging?",
                    "Is there a runbook for staging deploys?"), "deploy to staging runbook"),
        ("oncall", ("How does the on-call rotation work?", "Who is on call this week and how is it scheduled?",
                    "What are the on-call duties?"), "on-call rotation"),
        ("migrations", ("How do we run database migrations?", "What is the process for schema migrations?",
                        "Can I run a migration in production?"), "database migrations process"),
        ("review", ("What is our code review process?", "How many approvals does a pull request need?",
                    "What should a code reviewer check?"), "code review process approvals"),
        ("incident", ("How do I write an incident postmortem?", "What goes into a postmortem?",
                      "Is there a template for incident reports?"), "incident postmortem template"),
        ("secrets", ("Where do we store API keys?", "How are secrets managed?",
                     "How do I rotate a leaked credential?"), "secrets management API keys"),
    ],
}
TOPICS: tuple[Topic, ...] = tuple(
    Topic(kb=kb, id=f"{kb}/{tid}", questions=qs, query=query) for kb, items in _TOPICS.items() for tid, qs, query in items
)

# Conversational wrappers: the tool argument is the core question or a keyword query, never the filler.
OPENERS = ("", "", "", "Hi! ", "Hey, quick question: ", "Hello. ", "Could you help me? ", "I need to know something. ",
           "Sorry to bother you, ")
CLOSERS = ("", "", "", " Thanks!", " Thank you.", " Please keep it short.", " I need it for a meeting.")
KB_MENTIONS = ("Search {kb} for this: {q}", "In the {kb} knowledge base: {q}", "Look in {kb}. {q}",
               "{q} (check the {kb} knowledge base)", "Using {kb}, answer this: {q}")


@dataclass(frozen=True)
class ShopTemplate:
    """A shop question: phrasings with slots, the gold SQL, the slot kind and the answer shape."""

    id: str
    phrasings: tuple[str, ...]
    sql: str
    slot: str | None  # city, country, category, product, status, customer, year, n, or None
    answer: str  # "{v}" = the scalar result; "{rows}" = the rows listed
    kind: str = "scalar"  # scalar | rows


SHOP_TEMPLATES: tuple[ShopTemplate, ...] = (
    ShopTemplate("customers_in_city", ("How many customers live in {city}?", "What is the number of customers in {city}?",
                                       "Count the customers based in {city}."),
                 "SELECT COUNT(*) AS customers FROM customers WHERE city = '{city}'", "city",
                 "{v} customers live in {city}."),
    ShopTemplate("customers_in_country", ("How many customers are from {country}?", "How many of our customers are in {country}?",
                                          "Number of customers in {country}?"),
                 "SELECT COUNT(*) AS customers FROM customers WHERE country = '{country}'", "country",
                 "There are {v} customers in {country}."),
    ShopTemplate("orders_by_status", ("How many orders are {status}?", "Count the {status} orders.",
                                      "What is the number of orders with status {status}?"),
                 "SELECT COUNT(*) AS orders FROM orders WHERE status = '{status}'", "status",
                 "{v} orders are {status}."),
    ShopTemplate("products_in_category", ("How many products are in the {category} category?",
                                          "How many {category} products do we sell?", "Count the products in {category}."),
                 "SELECT COUNT(*) AS products FROM products WHERE category = '{category}'", "category",
                 "The {category} category has {v} products."),
    ShopTemplate("price_of", ("What does the {product} cost?", "What is the price of the {product}?",
                              "How much is the {product}?"),
                 "SELECT price FROM products WHERE name = '{product}'", "product",
                 "The {product} costs {v} euros."),
    ShopTemplate("stock_of", ("How many {product} units are in stock?", "What is the stock level of the {product}?",
                              "Do we still have the {product} in stock, and how many?"),
                 "SELECT stock FROM products WHERE name = '{product}'", "product",
                 "There are {v} units of the {product} in stock."),
    ShopTemplate("units_sold", ("How many units of the {product} were sold?", "How many {product} have we sold in total?",
                                "Total quantity sold of the {product}?"),
                 "SELECT SUM(i.quantity) AS units FROM order_items i JOIN products p ON p.product_id = i.product_id "
                 "WHERE p.name = '{product}'", "product",
                 "{v} units of the {product} were sold."),
    ShopTemplate("avg_price_category", ("What is the average price of {category} products?",
                                        "Average price in the {category} category?",
                                        "How much does a {category} product cost on average?"),
                 "SELECT ROUND(AVG(price), 2) AS avg_price FROM products WHERE category = '{category}'", "category",
                 "The average price of {category} products is {v} euros."),
    ShopTemplate("priciest_in_category", ("What is the most expensive product in {category}?",
                                          "Which {category} product has the highest price?",
                                          "Most expensive item in the {category} category?"),
                 "SELECT name, price FROM products WHERE category = '{category}' ORDER BY price DESC LIMIT 1",
                 "category", "The most expensive {category} product is {rows}.", "rows"),
    ShopTemplate("orders_of_customer", ("How many orders has {customer} placed?", "How many times did {customer} order?",
                                        "Number of orders by {customer}?"),
                 "SELECT COUNT(*) AS orders FROM orders o JOIN customers c ON c.customer_id = o.customer_id "
                 "WHERE c.name = '{customer}'", "customer",
                 "{customer} has placed {v} orders."),
    ShopTemplate("signup_of_customer", ("When did {customer} sign up?", "What is {customer}'s signup date?",
                                        "When did {customer} register?"),
                 "SELECT signup_date FROM customers WHERE name = '{customer}'", "customer",
                 "{customer} signed up on {v}."),
    ShopTemplate("city_of_customer", ("Where does {customer} live?", "Which city is {customer} from?",
                                      "What city is {customer} based in?"),
                 "SELECT city FROM customers WHERE name = '{customer}'", "customer",
                 "{customer} lives in {v}."),
    ShopTemplate("orders_in_year", ("How many orders were placed in {year}?", "Number of orders in {year}?",
                                    "How many orders did we get in {year}?"),
                 "SELECT COUNT(*) AS orders FROM orders WHERE order_date >= '{year}-01-01' AND order_date < '{next_year}-01-01'",
                 "year", "{v} orders were placed in {year}."),
    ShopTemplate("revenue_in_year", ("What was the total revenue in {year}?", "How much did we sell in {year}?",
                                     "Total sales amount for {year}?"),
                 "SELECT ROUND(SUM(total), 2) AS revenue FROM order_totals WHERE order_date >= '{year}-01-01' "
                 "AND order_date < '{next_year}-01-01'", "year",
                 "The total revenue in {year} was {v} euros."),
    ShopTemplate("top_cities", ("Which {n} cities have the most customers?", "Top {n} cities by number of customers?",
                                "In which {n} cities do most customers live?"),
                 "SELECT city, COUNT(*) AS customers FROM customers GROUP BY city ORDER BY customers DESC, city LIMIT {n}",
                 "n", "The top {n} cities by customers are {rows}.", "rows"),
    ShopTemplate("cheapest_products", ("What are the {n} cheapest products?", "List the {n} least expensive products.",
                                       "Show me the {n} cheapest items we sell."),
                 "SELECT name, price FROM products ORDER BY price ASC, name LIMIT {n}", "n",
                 "The {n} cheapest products are {rows}.", "rows"),
    ShopTemplate("categories", ("Which product categories are there?", "What categories does the shop sell?",
                                "List the product categories."),
                 "SELECT DISTINCT category FROM products ORDER BY category", None,
                 "The categories are {rows}.", "rows"),
    ShopTemplate("low_stock", ("Which products have fewer than {n} units in stock?",
                               "What products are almost out of stock (under {n} units)?",
                               "List products with stock below {n}."),
                 "SELECT name, stock FROM products WHERE stock < {n} ORDER BY stock, name", "n",
                 "Products with fewer than {n} units in stock: {rows}.", "rows"),
)
# The demo's SQL question (host.demo.QUESTIONS) counts all customers: no training template does.
RESERVED_SQL = ("SELECT COUNT(*) FROM customers",)

FILES = ("report.pdf", "reports/q3_revenue.pdf", "contracts/nda_acme.docx", "slides/kickoff.pptx",
         "data/sales_2024.xlsx", "notes/meeting_2024-05-02.md", "docs/index.html", "invoices/inv_1042.pdf",
         "exports/customers.csv", "papers/attention.pdf", "minutes.docx", "budget.xlsx", "README.md",
         "config/settings.json", "handbook/benefits.pdf", "research/results_summary.docx", "talk.pptx",
         "logs/summary.txt")
FOLDERS = ("invoices", "reports", "contracts", "docs", "notes", "papers", "exports", "research/2024")
PATTERNS = (("PDF", "*.pdf"), ("Word", "*.docx"), ("Markdown", "*.md"), ("Excel", "*.xlsx"), ("CSV", "*.csv"))
NEW_KB_NAMES = ("meeting_notes", "legal_docs", "support_tickets", "course_material", "design_specs", "recipes",
                "sales_playbook", "onboarding")

# Questions that need no tool, with their answers (stable facts).
GENERAL_QA: tuple[tuple[str, str], ...] = (
    ("What is the capital of France?", "The capital of France is Paris."),
    ("What is the capital of Japan?", "The capital of Japan is Tokyo."),
    ("How many days are in a leap year?", "A leap year has 366 days."),
    ("What is the boiling point of water at sea level in Celsius?", "Water boils at 100 °C at sea level."),
    ("Who wrote Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet."),
    ("How many minutes are in an hour?", "There are 60 minutes in an hour."),
    ("What is the chemical symbol for gold?", "The chemical symbol for gold is Au."),
    ("What does CPU stand for?", "CPU stands for central processing unit."),
    ("What does SQL stand for?", "SQL stands for Structured Query Language."),
    ("Translate 'thank you' into Spanish.", "'Thank you' in Spanish is 'gracias'."),
    ("What is the largest planet in the solar system?", "Jupiter is the largest planet in the solar system."),
    ("How many continents are there?", "There are seven continents."),
    ("What language is spoken in Brazil?", "Portuguese is the main language spoken in Brazil."),
    ("What is the freezing point of water in Fahrenheit?", "Water freezes at 32 °F."),
    ("What does JSON stand for?", "JSON stands for JavaScript Object Notation."),
    ("How many sides does a hexagon have?", "A hexagon has six sides."),
)
SMALL_TALK: tuple[tuple[str, str], ...] = (
    ("Hi!", "Hello! What can I help you with?"),
    ("Hello there.", "Hello! Ask me a question and I'll look it up with my tools if needed."),
    ("Thanks, that's all.", "You're welcome!"),
    ("Thank you for your help!", "Glad I could help."),
    ("Good morning!", "Good morning! How can I help?"),
    ("Who are you?", "I'm Quiver, an assistant that answers questions with the help of tools."),
    ("Bye!", "Goodbye!"),
    ("Ok, great.", "Great! Let me know if you need anything else."),
)
UNSUPPORTED: tuple[str, ...] = (
    "Book me a flight to Rome next Friday.", "Send an email to my manager saying I'm late.",
    "Order a pizza for tonight.", "Set an alarm for 7 am.", "Tell me the weather in Oslo right now.",
    "Play some relaxing music.", "Call my dentist and move my appointment.", "Post this on Twitter for me.",
    "Transfer 100 euros to Alice.", "Turn off the lights in the living room.",
)
UNSUPPORTED_ANSWERS = (
    "I can't do that: none of my tools can {what}.",
    "Sorry, I have no tool that can {what}.",
)


@dataclass
class ShopValues:
    """Slot values read from the real shop database."""

    city: list[str] = field(default_factory=list)
    country: list[str] = field(default_factory=list)
    category: list[str] = field(default_factory=list)
    product: list[str] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    customer: list[str] = field(default_factory=list)
    year: list[str] = field(default_factory=list)
    n: list[str] = field(default_factory=lambda: ["3", "5", "10"])
