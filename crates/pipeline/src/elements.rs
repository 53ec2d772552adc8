//! Making, adding and linking elements, with the names of what failed in the error.

use gst::prelude::*;

use crate::error::Error;

/// An element of `factory` named `name`.
pub(crate) fn make(factory: &str, name: &str) -> Result<gst::Element, Error> {
    if gst::ElementFactory::find(factory).is_none() {
        return Err(Error::MissingElement(factory.to_owned()));
    }
    gst::ElementFactory::make(factory)
        .name(name)
        .build()
        .map_err(|e| Error::CreateElement {
            factory: factory.to_owned(),
            name: name.to_owned(),
            reason: e.to_string(),
        })
}

/// The first of `factories` that is installed, as an element named `name`.
pub(crate) fn make_any(factories: &[&str], name: &str) -> Result<gst::Element, Error> {
    match factories
        .iter()
        .find(|f| gst::ElementFactory::find(f).is_some())
    {
        Some(factory) => make(factory, name),
        None => Err(Error::MissingElement(factories.join(" or "))),
    }
}

/// A queue holding at most `max_buffers` buffers (0: any number) and `max_time` (0: any
/// duration), never limited by bytes.
pub(crate) fn new_queue(
    name: &str,
    max_buffers: u32,
    max_time: gst::ClockTime,
) -> Result<gst::Element, Error> {
    let q = make("queue", name)?;
    q.set_property("max-size-buffers", max_buffers);
    q.set_property("max-size-bytes", 0u32);
    q.set_property("max-size-time", max_time.nseconds());
    Ok(q)
}

/// Puts `element` into `bin`.
pub(crate) fn add_to(bin: &gst::Bin, element: &gst::Element) -> Result<(), Error> {
    bin.add(element).map_err(|e| Error::AddElement {
        element: element.name().to_string(),
        bin: bin.name().to_string(),
        reason: e.to_string(),
    })
}

/// Links `a` to `b`.
pub(crate) fn link(a: &gst::Element, b: &gst::Element) -> Result<(), Error> {
    a.link(b).map_err(|_| Error::Link {
        src: a.name().to_string(),
        sink: b.name().to_string(),
    })
}

/// Links each element to the next.
pub(crate) fn link_chain(elements: &[&gst::Element]) -> Result<(), Error> {
    for pair in elements.windows(2) {
        link(pair[0], pair[1])?;
    }
    Ok(())
}

/// Links pad `src` to pad `sink`.
pub(crate) fn link_pads(src: &gst::Pad, sink: &gst::Pad) -> Result<(), Error> {
    let owner = |pad: &gst::Pad| {
        pad.parent_element()
            .map(|e| e.name().to_string())
            .unwrap_or_default()
    };
    src.link(sink).map(|_| ()).map_err(|e| Error::LinkPads {
        src_element: owner(src),
        src_pad: src.name().to_string(),
        sink_element: owner(sink),
        sink_pad: sink.name().to_string(),
        reason: e.to_string(),
    })
}

/// The always-present pad `name` of `element`.
pub(crate) fn static_pad(element: &gst::Element, name: &str) -> Result<gst::Pad, Error> {
    element.static_pad(name).ok_or_else(|| Error::NoStaticPad {
        element: element.name().to_string(),
        pad: name.to_owned(),
    })
}

/// A new pad of `element` from its request template `template` (`src_%u`, `sink_%u`).
pub(crate) fn request_pad(element: &gst::Element, template: &str) -> Result<gst::Pad, Error> {
    element
        .request_pad_simple(template)
        .ok_or_else(|| Error::NoRequestPad {
            element: element.name().to_string(),
            template: template.to_owned(),
        })
}

/// Exposes `pad` (of an element inside `bin`) as a pad of `bin`.
pub(crate) fn ghost_pad(bin: &gst::Bin, pad: &gst::Pad) -> Result<(), Error> {
    let error = |e: gst::glib::BoolError| Error::GhostPad {
        bin: bin.name().to_string(),
        pad: pad.name().to_string(),
        reason: e.to_string(),
    };
    let ghost = gst::GhostPad::with_target(pad).map_err(error)?;
    bin.add_pad(&ghost).map_err(error)
}

/// Sets `element`'s state (a pipeline's: every element's).
pub(crate) fn set_state(element: &gst::Element, state: gst::State) -> Result<(), Error> {
    element
        .set_state(state)
        .map(|_| ())
        .map_err(|_| Error::StateChange {
            element: element.name().to_string(),
            state: format!("{state:?}"),
        })
}

/// The pipeline that `description` (`gst-launch-1.0` syntax) describes.
pub(crate) fn launch(description: &str) -> Result<gst::Element, Error> {
    gst::parse::launch(description).map_err(|e| Error::Launch {
        description: description.to_owned(),
        reason: e.to_string(),
    })
}
