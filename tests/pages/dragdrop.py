"""The graph editor's gestures as a person makes them, with the mouse (Playwright): a function dragged from the
palette onto the canvas, and an edge drawn in connect mode by dragging from one node to another (edgehandles'
draw mode: the whole node is the handle). One implementation for every browser test that builds a graph."""
from playwright.sync_api import expect


def node_point(page, node_id):
    """Where a node of the canvas is on the page (its centre), from Cytoscape's rendered position."""
    return page.evaluate("""(id) => {
        const box = document.getElementById('canvas').getBoundingClientRect();
        const p = window.policygridEditor.cy.getElementById(id).renderedPosition();
        return {x: box.left + p.x, y: box.top + p.y};
    }""", node_id)


def drag(page, start, end):
    # In steps: edgehandles and the palette follow pointer moves, and a jump straight to the end is no drag.
    page.mouse.move(start["x"], start["y"])
    page.mouse.down()
    page.mouse.move((start["x"] + end["x"]) / 2, (start["y"] + end["y"]) / 2, steps=8)
    page.mouse.move(end["x"], end["y"], steps=8)
    page.mouse.up()


def node_count(page) -> int:
    return page.evaluate("window.policygridEditor.nodes().length")


def edge_count(page) -> int:
    return page.evaluate("window.policygridEditor.edges().length")


def drop_functions(page, spots: dict[str, tuple[float, float]]) -> None:
    """Drag each function from the palette to its spot, given as fractions of the canvas' width and height."""
    page.wait_for_selector("[data-testid=palette] .palette-item")
    for fid, (fx, fy) in spots.items():
        before = node_count(page)
        item = page.locator(f"[data-testid=palette] .palette-item[data-id={fid}]")
        expect(item).to_be_visible()
        item.scroll_into_view_if_needed()  # a long palette scrolls: drag from where the item is shown
        box = item.bounding_box()
        canvas = page.locator("#canvas").bounding_box()
        drag(page, {"x": box["x"] + 20, "y": box["y"] + 10},
             {"x": canvas["x"] + canvas["width"] * fx, "y": canvas["y"] + canvas["height"] * fy})
        assert node_count(page) == before + 1, f"{fid} dropped on the canvas made no node"


def draw_edges(page, pairs) -> None:
    """Connect mode on, an edge dragged from each source node to its target, connect mode off again."""
    page.click("[data-testid=connect]")
    expect(page.locator("[data-testid=connect]")).to_have_attribute("aria-pressed", "true")
    for source, target in pairs:
        before = edge_count(page)
        draw_edge(page, source, target)
        assert edge_count(page) == before + 1, f"the drag {source} → {target} drew no edge"
    page.click("[data-testid=connect]")
    expect(page.locator("[data-testid=connect]")).to_have_attribute("aria-pressed", "false")


def draw_edge(page, source, target) -> None:
    """One edge dragged in connect mode; the editor's note says whether it was accepted."""
    drag(page, node_point(page, source), node_point(page, target))
