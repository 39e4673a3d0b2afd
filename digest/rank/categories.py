# ruff: noqa: E501  (a data table of long official descriptions)
"""arXiv subject categories: official names and scope descriptions (arxiv.org/category_taxonomy).

Why here: subscribers of an arXiv digest often write a category name ("Computation and
Language") or code ("cs.CL") as a topic. Such a name says little to a sentence encoder
or to BM25 ("Computation and Language" shares no word with most NLP abstracts), while
arXiv's own one-paragraph scope note says what the category covers. A topic that names
a category is therefore embedded together with that note. Any other phrase is used as is.
"""

from __future__ import annotations

from digest.rank.text import fold

# code: (official name, arXiv's description of the category's scope, lightly shortened)
CATEGORIES: dict[str, tuple[str, str]] = {
    "cs.AI": (
        "Artificial Intelligence",
        "Covers all areas of AI except Vision, Robotics, Machine Learning, Multiagent Systems, and Computation and Language (Natural Language Processing), which have separate subject areas. In particular, includes Expert Systems, Theorem Proving (although this may overlap with Logic in Computer Science), Knowledge Representation, Planning, and Uncertainty in AI.",
    ),
    "cs.AR": ("Hardware Architecture", "Covers systems organization and hardware architecture."),
    "cs.CC": (
        "Computational Complexity",
        "Covers models of computation, complexity classes, structural complexity, complexity tradeoffs, upper and lower bounds.",
    ),
    "cs.CE": (
        "Computational Engineering, Finance, and Science",
        "Covers applications of computer science to the mathematical modeling of complex systems in the fields of science, engineering, and finance.",
    ),
    "cs.CG": (
        "Computational Geometry",
        "Roughly includes material in ACM Subject Classes I.3.5 and F.2.2.",
    ),
    "cs.CL": (
        "Computation and Language",
        "Covers natural language processing. Roughly includes material in ACM Subject Class I.2.7. Note that work on artificial languages (programming languages, logics, formal systems) that does not explicitly address natural-language issues broadly construed (natural-language processing, computational linguistics, speech, text retrieval, etc.) is not appropriate for this area.",
    ),
    "cs.CR": (
        "Cryptography and Security",
        "Covers all areas of cryptography and security including authentication, public key cryptosystems, proof-carrying code, etc.",
    ),
    "cs.CV": (
        "Computer Vision and Pattern Recognition",
        "Covers image processing, computer vision, pattern recognition, and scene understanding.",
    ),
    "cs.CY": (
        "Computers and Society",
        "Covers impact of computers on society, computer ethics, information technology and public policy, legal aspects of computing, computers and education.",
    ),
    "cs.DB": ("Databases", "Covers database management, datamining, and data processing."),
    "cs.DC": (
        "Distributed, Parallel, and Cluster Computing",
        "Covers fault-tolerance, distributed algorithms, stabilility, parallel computation, and cluster computing.",
    ),
    "cs.DL": (
        "Digital Libraries",
        "Covers all aspects of the digital library design and document and text creation.",
    ),
    "cs.DM": (
        "Discrete Mathematics",
        "Covers combinatorics, graph theory, applications of probability.",
    ),
    "cs.DS": (
        "Data Structures and Algorithms",
        "Covers data structures and analysis of algorithms.",
    ),
    "cs.ET": (
        "Emerging Technologies",
        "Covers approaches to information processing (computing, communication, sensing) and bio-chemical analysis based on alternatives to silicon CMOS-based technologies, such as nanoscale electronic, photonic, spin-based, superconducting, mechanical, bio-chemical and quantum technologies.",
    ),
    "cs.FL": (
        "Formal Languages and Automata Theory",
        "Covers automata theory, formal language theory, grammars, and combinatorics on words.",
    ),
    "cs.GL": (
        "General Literature",
        "Covers introductory material, survey material, predictions of future trends, biographies, and miscellaneous computer-science related material.",
    ),
    "cs.GR": ("Graphics", "Covers all aspects of computer graphics."),
    "cs.GT": (
        "Computer Science and Game Theory",
        "Covers all theoretical and applied aspects at the intersection of computer science and game theory, including work in mechanism design, learning in games, foundations of agent modeling in games, and coordination, specification and formal methods for non-cooperative computational environments.",
    ),
    "cs.HC": (
        "Human-Computer Interaction",
        "Covers human factors, user interfaces, and collaborative computing.",
    ),
    "cs.IR": (
        "Information Retrieval",
        "Covers indexing, dictionaries, retrieval, content and analysis.",
    ),
    "cs.IT": (
        "Information Theory",
        "Covers theoretical and experimental aspects of information theory and coding.",
    ),
    "cs.LG": (
        "Machine Learning",
        "Papers on all aspects of machine learning research (supervised, unsupervised, reinforcement learning, bandit problems, and so on) including also robustness, explanation, fairness, and methodology. Also an appropriate primary category for applications of machine learning methods.",
    ),
    "cs.LO": (
        "Logic in Computer Science",
        "Covers all aspects of logic in computer science, including finite model theory, logics of programs, modal logic, and program verification.",
    ),
    "cs.MA": (
        "Multiagent Systems",
        "Covers multiagent systems, distributed artificial intelligence, intelligent agents, coordinated interactions, and practical applications.",
    ),
    "cs.MM": ("Multimedia", "Covers multimedia information systems."),
    "cs.MS": ("Mathematical Software", "Covers mathematical software."),
    "cs.NA": (
        "Numerical Analysis",
        "Covers numerical algorithms for problems in analysis and algebra, scientific computation.",
    ),
    "cs.NE": (
        "Neural and Evolutionary Computing",
        "Covers neural networks, connectionism, genetic algorithms, artificial life, adaptive behavior.",
    ),
    "cs.NI": (
        "Networking and Internet Architecture",
        "Covers all aspects of computer communication networks, including network architecture and design, network protocols, and internetwork standards (like TCP/IP).",
    ),
    "cs.OH": ("Other Computer Science", "For documents that do not fit anywhere else."),
    "cs.OS": (
        "Operating Systems",
        "Roughly includes material in ACM Subject Classes D.4.1, D.4.2., D.4.3, D.4.4, D.4.5, D.4.7, and D.4.9.",
    ),
    "cs.PF": (
        "Performance",
        "Covers performance measurement and evaluation, queueing, and simulation.",
    ),
    "cs.PL": (
        "Programming Languages",
        "Covers programming language semantics, language features, programming approaches (such as object-oriented programming, functional programming, logic programming).",
    ),
    "cs.RO": ("Robotics", "Roughly includes material in ACM Subject Class I.2.9."),
    "cs.SC": ("Symbolic Computation", "Roughly includes material in ACM Subject Class I.1."),
    "cs.SD": (
        "Sound",
        "Covers all aspects of computing with sound, and sound as an information channel. Includes models of sound, analysis and synthesis, audio user interfaces, sonification of data, computer music, and sound signal processing.",
    ),
    "cs.SE": (
        "Software Engineering",
        "Covers design tools, software metrics, testing and debugging, programming environments, etc.",
    ),
    "cs.SI": (
        "Social and Information Networks",
        "Covers the design, analysis, and modeling of social and information networks, including their applications for on-line information access, communication, and interaction, and their roles as datasets in the exploration of questions in these and other domains.",
    ),
    "cs.SY": (
        "Systems and Control",
        "cs.SY is an alias for eess.SY. This section includes theoretical and experimental research covering all facets of automatic control systems.",
    ),
    "eess.AS": (
        "Audio and Speech Processing",
        "Theory and methods for processing signals representing audio, speech, and language, and their applications. This includes analysis, synthesis, enhancement, transformation, classification and interpretation of such signals as well as the design, development, and evaluation of associated signal processing systems.",
    ),
    "eess.IV": (
        "Image and Video Processing",
        "Theory, algorithms, and architectures for the formation, capture, processing, communication, analysis, and display of images, video, and multidimensional signals in a wide variety of applications.",
    ),
    "eess.SP": (
        "Signal Processing",
        "Theory, algorithms, performance analysis and applications of signal and data analysis, including physical modeling, processing, detection and parameter estimation, learning, mining, retrieval, and information extraction.",
    ),
    "eess.SY": (
        "Systems and Control",
        "This section includes theoretical and experimental research covering all facets of automatic control systems.",
    ),
    "stat.AP": (
        "Applications",
        "Biology, Education, Epidemiology, Engineering, Environmental Sciences, Medical, Physical Sciences, Quality Control, Social Sciences.",
    ),
    "stat.CO": ("Computation", "Algorithms, Simulation, Visualization."),
    "stat.ME": (
        "Methodology",
        "Design, Surveys, Model Selection, Multiple Testing, Multivariate Methods, Signal and Image Processing, Time Series, Smoothing, Spatial Statistics, Survival Analysis, Nonparametric and Semiparametric Methods.",
    ),
    "stat.ML": (
        "Machine Learning",
        "Covers machine learning papers (supervised, unsupervised, semi-supervised learning, graphical models, reinforcement learning, bandits, high dimensional inference, etc.) with a statistical or theoretical grounding.",
    ),
    "stat.TH": (
        "Statistics Theory",
        "Asymptotics, Bayesian Inference, Decision Theory, Estimation, Foundations, Inference, Testing.",
    ),
    "math.NA": (
        "Numerical Analysis",
        "Numerical algorithms for problems in analysis and algebra, scientific computation.",
    ),
    "math.OC": (
        "Optimization and Control",
        "Operations research, linear programming, control theory, systems theory, optimal control, game theory.",
    ),
    "math.IT": (
        "Information Theory",
        "math.IT is an alias for cs.IT. Covers theoretical and experimental aspects of information theory and coding.",
    ),
    "math.PR": ("Probability", "Theory and applications of probability and stochastic processes."),
    "math.ST": ("Statistics Theory", "Applied, computational and theoretical statistics."),
    "q-bio.NC": (
        "Neurons and Cognition",
        "Synapse, cortex, neuronal dynamics, neural network, sensorimotor control, behavior, attention.",
    ),
    "q-bio.QM": (
        "Quantitative Methods",
        "All experimental, numerical, statistical and mathematical contributions of value to biology.",
    ),
    "q-fin.CP": (
        "Computational Finance",
        "Computational methods, including Monte Carlo, PDE, lattice and other numerical methods with applications to financial modeling.",
    ),
    "econ.EM": (
        "Econometrics",
        "Econometric Theory, Micro-Econometrics, Macro-Econometrics, Empirical Content of Economic Relations discovered via New Methods, Methodological Aspects of the Application of Statistical Inference to Economic Data.",
    ),
    "physics.comp-ph": (
        "Computational Physics",
        "All aspects of computational science applied to physics.",
    ),
    "quant-ph": ("Quantum Physics", "Quantum mechanics, quantum information, quantum computation."),
}

_BY_NAME: dict[str, str] = {}
for _code, (_name, _) in sorted(CATEGORIES.items()):
    # Names shared by two codes (Systems and Control) resolve to the first; same scope.
    _BY_NAME.setdefault(" ".join(fold(_name).split()), _code)


def category_of(phrase: str) -> str | None:
    """The category code a topic phrase names ("cs.CL", "Computation and Language"), if any."""
    text = " ".join(fold(phrase).split())
    for code in CATEGORIES:
        if text == code.lower():
            return code
    return _BY_NAME.get(text)


def describe(phrase: str) -> str:
    """The text to embed for a topic: the phrase, plus arXiv's scope note if it names one."""
    code = category_of(phrase)
    if code is None:
        return phrase
    name, description = CATEGORIES[code]
    return f"{name}. {description}"


def describe_parts(phrase: str) -> list[str]:
    """The texts to embed separately for a topic: [name, scope note], or [phrase]."""
    code = category_of(phrase)
    if code is None:
        return [phrase]
    name, description = CATEGORIES[code]
    return [name, description]
